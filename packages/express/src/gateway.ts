import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CloseguardTypeError, type GatewayApp, type Headers } from '@closeguard/core';
import { checkGatewayOptions, createEnv, Exchange, pipeBody, serveGateway, type GatewayOptions, type GatewayWriter } from '@closeguard/node';

/**
 * Mounts a gateway app in Express: `app.use('/api', gateway(app))`. The app sees `env.path`
 * relative to the mount point (as `env.url`); its body goes out through Express's
 * response (so `compression()` and loggers see it) and its `close()` runs exactly once on every
 * path, hang-ups included. A failure before the headers goes to `next(error)`; one after them
 * cuts the connection. Behind `connectionClosing()` the app shares the request's scope, so
 * `leasesFor(env.scope)` and `connection()` reach the same connections as `req.db()`.
 * @throws TypeError when `app` is not a function or an option is wrong, naming it.
 * @example
 * app.use('/legacy', gateway((env, start) => {
 *   start(200, { 'content-type': 'text/plain' });
 *   return [`you asked for ${env.path}\n`];
 * }));
 */
export function gateway(app: GatewayApp, options: GatewayOptions = {}): RequestHandler {
  if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `gateway(app) takes a gateway app function; received ${typeof app}`);
  const settings = checkGatewayOptions(options);
  return function closeguardGateway(req: Request, res: Response): Promise<void> {
    // Behind connectionClosing(), its exchange (and the leases on its scope) is this request's.
    const shared = Exchange.of(req);
    const exchange = shared ?? Exchange.start(req, res, undefined, { url: req.originalUrl, logger: settings.logger, abortGrace: settings.abortGrace, driven: true }, Exchange);
    // Express strips the mount path from req.url: env.url and env.path are relative to the mount,
    // as in every adapter (the full target stays on the native request: req.originalUrl).
    const env = createEnv(req, { name: 'express', native: { req, res }, url: req.url }, exchange.innermost.scope, settings.bodyLimit);
    const served = serveGateway(app, env, exchange, expressWriter, res, settings);
    // Returned to router, which traces it: behind connectionClosing() its settling settles the chain.
    if (shared !== undefined) return served;
    return served.then(
      () => exchange.settled(),
      (error: unknown) => {
        exchange.scope.report(error, 'write');
        exchange.settled(error);
      },
    );
  };
}

/** Writes through Express's response, so `compression()` and loggers see the body. */
const expressWriter: GatewayWriter<Response> = {
  send(res, status, headers, body) {
    res.status(status);
    setHeaders(res, headers);
    if (body === undefined) {
      res.end();
      return;
    }
    pipeBody(body, res);
  },
  fail(res, error) {
    // Express's error path: router sets req.next to the next() of the router running the gateway's layer.
    (res.req as Request & { next: NextFunction }).next(error);
  },
};

/**
 * Sets a gateway app's headers on Express's response, as given: `res.setHeader`, not `res.set`,
 * which would add a charset to the app's Content-Type. A name repeated in a list of pairs is
 * appended (Set-Cookie); its first occurrence replaces what middleware set before.
 */
function setHeaders(res: Response, headers: Headers): void {
  if (!Array.isArray(headers)) {
    const object = headers as Readonly<Record<string, string | readonly string[]>>;
    for (const name in object) res.setHeader(name, object[name] as string | string[]);
    return;
  }
  const seen = new Set<string>();
  for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) {
    const key = name.toLowerCase();
    if (seen.has(key)) res.appendHeader(name, value);
    else {
      seen.add(key);
      res.setHeader(name, value);
    }
  }
}
