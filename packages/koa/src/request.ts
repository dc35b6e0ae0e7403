import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Logger } from '@closeguard/core';
import { HostRequest } from '@closeguard/core/host';

/** Where the request's HostRequest lives on the native request (a slot, not a WeakMap: it is on every request's path). */
const requestSlot: unique symbol = Symbol('closeguard.koa.request');

type Slotted = IncomingMessage & { [requestSlot]?: HostRequest };

/** What a request needs to know when it enters. */
export interface RequestSettings {
  logger: Logger | undefined;
  asyncContext: boolean;
  abortGrace: number;
  /** A gateway drives the body (see HostRequestOptions.driven). */
  driven?: boolean;
}

/** The HostRequest `connectionClosing()` (or a gateway) started for this native request, if any. */
export function requestOf(req: IncomingMessage): HostRequest | undefined {
  return (req as Slotted)[requestSlot];
}

/**
 * Starts a HostRequest for a Koa request and ties "response over" to the response's one 'close'
 * event, read with `writableFinished` inside the listener (true: sent in full; false: the client left).
 */
export function startRequest(req: IncomingMessage, res: ServerResponse, settings: RequestSettings): HostRequest {
  const request = new HostRequest({
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    logger: settings.logger,
    asyncContext: settings.asyncContext,
    abortGrace: settings.abortGrace,
    driven: settings.driven,
    response: res,
  });
  (req as Slotted)[requestSlot] = request;
  // One shared listener, no closure: it finds the request through res.req.
  res.on('close', onResponseClose); // 'close' comes once per response: no once() wrapper to allocate
  if (!res.socket) watchQueued(req, res, request);
  return request;
}

function onResponseClose(this: ServerResponse): void {
  (this.req as Slotted)[requestSlot]?.over(this.writableFinished);
}

/**
 * A response queued behind a pipelined one has no socket yet, and gets no 'close' if the socket
 * goes first: watch the socket for those only (node:http's own behaviour; the node host does the same).
 */
function watchQueued(req: IncomingMessage, res: ServerResponse, request: HostRequest): void {
  const socket = req.socket;
  const onSocketClose = (): void => request.over(false);
  socket.once('close', onSocketClose);
  res.once('close', () => socket.off('close', onSocketClose));
}
