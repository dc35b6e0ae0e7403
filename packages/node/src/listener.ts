import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { CloseguardError, CloseguardTypeError, type GatewayApp, type Logger } from '@closeguard/core';
import { checkHostOptions } from '@closeguard/core/host';
import { createEnv, type NodeRequest } from './env.ts';
import { Exchange } from './exchange.ts';
import { sendError, writeHead, type NodeResponse } from './respond.ts';
import { pipeBody, serveGateway, type GatewayWriter } from './serve.ts';

/** Options of `requestListener()`. Durations are milliseconds, sizes bytes. */
export interface RequestListenerOptions {
  /** How long to wait, after the client hangs up, for a body stuck at an `await`. Default 5000. */
  abortGrace?: number;
  /** Largest request body `env.body` yields; past it, iteration throws a 413 error. Default 1 MiB. */
  bodyLimit?: number;
  /** Bytes of response body read ahead of the socket. Default 16 KiB. */
  highWaterMark?: number;
  /** Send error messages and stacks in 500 responses (development only). Default false. */
  exposeErrors?: boolean;
  /** Where app and cleanup errors are logged. Default: console. */
  logger?: Logger;
  /** Make `currentScope()` work inside the app (AsyncLocalStorage; costs a few % per request). Default false. */
  asyncContext?: boolean;
}

type Listener = {
  (req: IncomingMessage, res: ServerResponse): void;
  (req: Http2ServerRequest, res: Http2ServerResponse): void;
};

const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Serves a gateway app on `node:http` (or the `node:http2` compatibility API): calls the body's
 * `close()` exactly once on every path, writes with backpressure, answers 500 on a failure before
 * the headers and cuts the connection on one after.
 * @throws TypeError when `app` is not a function or an option has the wrong type.
 * @example
 * http.createServer(requestListener((env, start) => {
 *   start(200, { 'content-type': 'text/plain' });
 *   return ['hello'];
 * })).listen(3000);
 */
export function requestListener(app: GatewayApp, options: RequestListenerOptions = {}): Listener {
  if (typeof app !== 'function') throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `requestListener(app) takes a gateway app function; received ${typeof app}`);
  checkHostOptions('requestListener', options);
  const settings = {
    abortGrace: options.abortGrace,
    highWaterMark: options.highWaterMark,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT_BYTES,
    exposeErrors: options.exposeErrors === true,
    logger: options.logger ?? console,
    asyncContext: options.asyncContext === true,
    driven: true, // drive() bounds the body's waits; the exchange's own timer is only a backstop
  };
  const writer = nodeWriter(settings.exposeErrors, settings.logger);
  return (req: NodeRequest, res: NodeResponse): void => {
    const exchange = Exchange.start(req, res, undefined, settings, Exchange);
    const env = createEnv(req, { name: 'node', native: { req, res } }, exchange.scope, settings.bodyLimit);
    // The handlers return nothing: a promise returned from one costs two more turns to adopt.
    serveGateway(app, env, exchange, writer, exchange, settings).then(
      () => exchange.settled(),
      (error: unknown) => {
        exchange.scope.report(error, 'write');
        exchange.settled(error);
      },
    );
  };
}

/** Writes straight to Node's response: the body through `pipeline` (which destroys it on a hang-up). */
function nodeWriter(exposeErrors: boolean, logger: Logger): GatewayWriter<Exchange> {
  return {
    send({ res }, status, headers, body) {
      writeHead(res, status, headers, 'stream' in res);
      if (body === undefined) {
        res.end();
        return;
      }
      pipeBody(body, res);
    },
    fail({ req, res, scope }, error) {
      if (isUnexpected(error)) logger.error(`closeguard: ${scope.method} ${scope.url} failed`, error);
      if (!res.headersSent && !res.destroyed) sendError(res, error, exposeErrors, req.complete);
    },
  };
}

/** Overload (503), oversized bodies (413) and other coded client-facing outcomes are answers, not faults to log. */
function isUnexpected(error: unknown): boolean {
  return !(error instanceof CloseguardError) || error.status === 500;
}
