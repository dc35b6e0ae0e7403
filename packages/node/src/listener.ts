import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as http2Constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { pipeline } from 'node:stream';
import { CloseguardError, CloseguardTypeError, type CloseReason, type GatewayApp, type Logger } from '@closeguard/core';
import { checkHostOptions, createScope, drive } from '@closeguard/core/host';
import type { BodyOutcome } from '@closeguard/core/host';
import { createEnv, type NodeRequest } from './env.ts';
import { sendError, writeHead, type NodeResponse } from './respond.ts';

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
  };
  return (req: NodeRequest, res: NodeResponse): void => {
    const scope = createScope({ method: req.method ?? 'GET', url: req.url ?? '/', logger: settings.logger, asyncContext: settings.asyncContext, response: res });
    // 'close' is the one terminal event of a response; unfinished at 'close' means the client left.
    // A response queued behind a pipelined one has no socket yet and gets no 'close' if the
    // socket goes first: watch the socket for those only (one listener per request otherwise).
    const queuedOn = 'stream' in res || res.socket ? undefined : req.socket;
    const over = new Promise<void>((resolve) => {
      const onClose = (): void => {
        res.off('close', onClose);
        queuedOn?.off('close', onClose);
        if (!isFinished(res)) scope.abort('aborted');
        resolve();
      };
      res.once('close', onClose);
      queuedOn?.once('close', onClose);
    });
    const env = createEnv(req, { name: 'node', native: { req, res } }, scope, settings.bodyLimit);
    // The handlers return nothing: a promise returned from one costs two more turns to adopt.
    serve(app, env, req, res, over, settings, queuedOn !== undefined).then(
      (outcome) => {
        void scope.close(closeReason(outcome, res));
      },
      (error: unknown) => {
        scope.report(error, 'write');
        void scope.close('error');
      },
    );
  };
}

type Settings = { abortGrace: number | undefined; highWaterMark: number | undefined; exposeErrors: boolean; logger: Logger };

/** Drives one request to its end: resolves once the body is closed and the response is over. */
async function serve(app: GatewayApp, env: ReturnType<typeof createEnv>, req: NodeRequest, res: NodeResponse, over: Promise<void>, settings: Settings, queued: boolean): Promise<BodyOutcome> {
  const driven = await drive(app, env, settings);
  if (!driven.ok) {
    if (driven.outcome === 'error') {
      if (isUnexpected(driven.error)) settings.logger.error(`closeguard: ${env.method} ${env.url} failed`, driven.error);
      if (!res.headersSent && !res.destroyed) sendError(res, driven.error, settings.exposeErrors, req.complete);
    } else if (!res.destroyed) {
      res.destroy();
    }
    await over;
    return driven.outcome;
  }
  const { body } = driven;
  try {
    writeHead(res, driven.status, driven.headers, 'stream' in res);
  } catch (error) {
    body.destroy();
    await body.outcome;
    settings.logger.error(`closeguard: ${env.method} ${env.url} has headers Node refused`, error);
    sendError(res, error, settings.exposeErrors, req.complete);
    await over;
    return 'error';
  }
  if (env.method === 'HEAD' || driven.status === 204 || driven.status === 304) {
    res.end();
    body.destroy();
  } else {
    // On a hang-up pipeline destroys the body (its close() runs); on a body error it destroys
    // the response, which cuts the connection: the client must not take a truncated body as whole.
    try {
      pipeline(body, res as NodeJS.WritableStream, (error) => {
        if (error && !res.destroyed) res.destroy();
      });
    } catch {
      // Node 24 throws ERR_STREAM_UNABLE_TO_PIPE (and leaves the body alive) when the client left
      // between the first chunk and this line.
      body.destroy();
    }
    // A queued response whose socket closed never drains: stop the body when the request is aborted.
    if (queued) env.signal.addEventListener('abort', () => body.destroy(), { once: true });
  }
  const outcome = await body.outcome;
  if (outcome === 'error') settings.logger.error(`closeguard: ${env.method} ${env.url} failed after the headers were sent`, body.errored);
  await over;
  return outcome;
}

/** Overload (503), oversized bodies (413) and other coded client-facing outcomes are answers, not faults to log. */
function isUnexpected(error: unknown): boolean {
  return !(error instanceof CloseguardError) || error.status === 500;
}

function closeReason(outcome: BodyOutcome, res: NodeResponse): CloseReason {
  if (outcome === 'timeout' || outcome === 'error') return outcome;
  return isFinished(res) ? 'complete' : 'aborted';
}

/**
 * Whether the response went out in full. On HTTP/2, Node's compatibility API reports
 * `writableFinished` (and emits 'finish') also when the client reset the stream, because
 * closing an aborted stream ends its writable side: the stream's own abort flag tells them apart.
 */
function isFinished(res: NodeResponse): boolean {
  if (!res.writableFinished) return false;
  return !('stream' in res) || (!res.stream.aborted && res.stream.rstCode === http2Constants.NGHTTP2_NO_ERROR);
}
