import { pipeline } from 'node:stream';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CloseguardTypeError, type GatewayApp } from '@closeguard/core';
import { drive, HostRequest, type BodyOutcome, type GatewayReadable, type HostEnv } from '@closeguard/core/host';
import { createEnv } from '@closeguard/node';
import { setHeaders } from './headers.ts';
import { checkGatewayOptions, type GatewayOptions, type GatewaySettings as Settings } from './options.ts';
import { requestSlot, type SlottedRequest } from './request.ts';

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
  return function closeguardGateway(req: Request, res: Response, next: NextFunction): Promise<void> {
    const shared = (req as SlottedRequest)[requestSlot]?.innermost;
    const request = shared ?? ownRequest(req, res, settings);
    const env = createEnv(req, { name: 'express', native: { req, res }, url: req.url }, request.scope, settings.bodyLimit);
    // Express strips the mount path from req.url: env.url and env.path are relative to the mount,
    // as in every adapter (the full target stays on the native request: req.originalUrl).
    // Returned to router, which traces it: behind connectionClosing() its settling settles the chain.
    return serve(app, env, req, res, next, settings).then(
      (outcome) => end(request, outcome, shared === undefined, res),
      (error: unknown) => {
        request.scope.report(error, 'write');
        end(request, 'error', shared === undefined, res);
      },
    );
  };
}

/** A request of the gateway's own, when no connectionClosing() runs before it. */
function ownRequest(req: Request, res: Response, settings: Settings): HostRequest {
  const request = new HostRequest({ method: req.method, url: req.originalUrl, logger: settings.logger, abortGrace: settings.abortGrace, driven: true, response: res });
  // A response queued behind a pipelined one has no socket yet, and no 'close' if the socket goes first.
  const queuedOn = res.socket ? undefined : req.socket;
  const onClose = (): void => {
    res.off('close', onClose);
    queuedOn?.off('close', onClose);
    request.over(res.writableFinished);
  };
  res.once('close', onClose);
  queuedOn?.once('close', onClose);
  return request;
}

function end(request: HostRequest, outcome: BodyOutcome, own: boolean, res: Response): void {
  // A body stuck past abortGrace may still use the request's connections: destroy them, never release.
  if (outcome === 'timeout') void request.scope.close('timeout');
  if (!own) return;
  // A failure after the headers cut the response: the request failed, it was not the client leaving.
  if (outcome === 'error' && res.headersSent) void request.scope.close('error');
  if (outcome === 'error') request.failed();
  request.settled();
}

/** Drives the app into Express's response; resolves once the body is closed. */
async function serve(app: GatewayApp, env: HostEnv, req: Request, res: Response, next: NextFunction, settings: Settings): Promise<BodyOutcome> {
  const driven = await drive(app, env, settings);
  if (!driven.ok) {
    // The framework's error path sees an app failure (also after a hang-up: never swallow one).
    if (driven.outcome === 'error') next(driven.error);
    else if (!res.destroyed) res.destroy();
    return driven.outcome;
  }
  const { body } = driven;
  try {
    res.status(driven.status);
    setHeaders(res, driven.headers);
  } catch (error) {
    body.destroy();
    await body.outcome;
    next(error);
    return 'error';
  }
  if (env.method === 'HEAD' || driven.status === 204 || driven.status === 304) {
    res.end();
    body.destroy();
  } else {
    send(body, res);
    // A queued response whose socket closed never drains: stop the body when the request is aborted.
    if (!res.socket) env.scope.whenAborted(() => body.destroy());
  }
  const outcome = await body.outcome;
  if (outcome === 'error') settings.logger.error(`closeguard: ${env.method} ${env.url} failed after the headers were sent`, body.errored);
  return outcome;
}

/**
 * Streams the body through Express's response (and whatever wraps it, like compression). pipeline,
 * not pipe: pipe never destroys the source on a hang-up. A body error destroys the response, which
 * cuts the connection: the client must not take a truncated body as whole.
 */
function send(body: GatewayReadable, res: Response): void {
  try {
    pipeline(body, res, (error) => {
      if (error && !res.destroyed) res.destroy();
    });
  } catch {
    // Node ≥ 23 throws ERR_STREAM_UNABLE_TO_PIPE (and leaves the body alive) when the client left
    // between the first chunk and this line.
    body.destroy();
  }
}
