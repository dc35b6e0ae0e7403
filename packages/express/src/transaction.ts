import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { TransactionOptions } from '@closeguard/core';
import { checkTransactionOption } from '@closeguard/core/host';
import { Exchange, useTransaction } from '@closeguard/node';
import { ExpressExchange } from './settle.ts';

/**
 * Route middleware that gives a route its own request-transaction setting: `transaction(false)`
 * runs it outside a transaction where `connectionClosing({ transaction: true })` turned them on;
 * `transaction()` (or `transaction({ commitOn, commitAfterHangUp })`) runs it inside one where
 * they are off. Put it before anything in the route that calls `req.db()`.
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` at once when `setting` is wrong. Its
 * requests fail (Express's error path) with `ERR_CLOSEGUARD_TRANSACTION_BEGUN` when the request
 * leased a connection already, `ERR_CLOSEGUARD_NO_REQUEST` when `connectionClosing()` did not let it in.
 * @example
 * app.get('/report', transaction(false), async (req, res) => { pipeline(reportStream(await req.db()), res, () => {}) });
 */
export function transaction(setting: boolean | TransactionOptions = true): RequestHandler {
  const mode = checkTransactionOption(setting, 'transaction(setting)')!;
  return function closeguardTransaction(req: Request, _res: Response, next: NextFunction): void {
    useTransaction(req, mode, 'transaction');
    if (mode !== false) holdResponse(Exchange.of(req));
    next();
  };
}

type Method = 'write' | 'end' | 'flushHeaders';
type Call = readonly [Method, unknown[]];
type Apply = (this: ServerResponse, ...args: unknown[]) => unknown;

/**
 * Express has no hook between a handler's `res.send()` and the head going out: in a transaction
 * request the response's `write`, `end` and `flushHeaders` are its own properties (as
 * `compression` and `on-headers` do it, never the prototype's), and the first call waits for the
 * request's transaction — committed when its status commits, else rolled back — while later ones
 * queue behind it. A failed COMMIT goes to Express's error path (`req.next(error)`), whose
 * handler answers 500 in place of the response; once the head went out (an explicit
 * `writeHead()` first) it can only cut the connection. A first write while a query still runs on
 * the connection (a cursor the body streams) goes out at once: that transaction ends with the request.
 */
class ResponseHold {
  readonly #exchange: ExpressExchange;
  /** What the response's methods were before (the prototype's, or a middleware's own, like compression's). */
  readonly #methods: Record<Method, Apply>;
  #state: 'open' | 'settling' | 'done' = 'open';
  #queue: Call[] = [];
  /** A held write returned false: the writer waits for 'drain'. */
  #owesDrain = false;

  constructor(exchange: ExpressExchange, res: ServerResponse) {
    this.#exchange = exchange;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- the response's own, called on it with apply()
    this.#methods = { write: res.write as Apply, end: res.end as Apply, flushHeaders: res.flushHeaders };
  }

  call(res: ServerResponse, method: Method, args: unknown[]): unknown {
    if (this.#state === 'done') return this.#methods[method].apply(res, args);
    if (this.#state === 'open') {
      const settling = this.#exchange.settleTransactions(res.statusCode);
      if (settling === undefined) {
        this.#state = 'done';
        return this.#methods[method].apply(res, args);
      }
      this.#state = 'settling';
      settling.then(() => this.#flush(res), (error: unknown) => this.#fail(res, error));
    }
    this.#queue.push([method, args]);
    if (method === 'write') return !(this.#owesDrain = true);
    return method === 'end' ? res : undefined;
  }

  /** Committed (or rolled back): what was held goes out, in order. */
  #flush(res: ServerResponse): void {
    this.#state = 'done';
    let blocked = false;
    for (const [method, args] of this.#queue.splice(0)) {
      const result = this.#methods[method].apply(res, args);
      if (method === 'write') blocked = result === false;
    }
    // Node emits 'drain' itself only after a write of its own returned false.
    if (this.#owesDrain && !blocked && !res.writableEnded) res.emit('drain');
  }

  /** COMMIT failed: the held response is dropped and the error goes to Express's error path. */
  #fail(res: ServerResponse, error: unknown): void {
    this.#state = 'done';
    this.#queue = [];
    const exchange = this.#exchange;
    exchange.failed();
    const next = (res.req as { next?: unknown }).next;
    if (!res.headersSent && typeof next === 'function') {
      // What described the dropped body must not describe the error's.
      for (const name of ['content-type', 'content-length', 'etag']) res.removeHeader(name);
      (next as (error: unknown) => void)(error);
      return;
    }
    exchange.scope.report(error, 'write');
    res.destroy(); // the head went out: the client must not take the response as whole
  }
}

/** Where a request's hold lives on its exchange. */
const holdSlot: unique symbol = Symbol('closeguard.express.hold') as never;

type Slotted = ExpressExchange & { [holdSlot]?: ResponseHold };

/** Holds the first write of the request's response until its transaction is settled (once per request). */
export function holdResponse(exchange: Exchange | undefined): void {
  if (!(exchange instanceof ExpressExchange) || (exchange as Slotted)[holdSlot] !== undefined) return;
  const res = exchange.res as ServerResponse;
  (exchange as Slotted)[holdSlot] = new ResponseHold(exchange, res);
  res.write = heldWrite as ServerResponse['write'];
  res.end = heldEnd as ServerResponse['end'];
  res.flushHeaders = heldFlushHeaders;
}

function holdOf(res: ServerResponse): ResponseHold | undefined {
  const exchange = Exchange.of(res.req);
  return exchange instanceof ExpressExchange ? (exchange as Slotted)[holdSlot] : undefined;
}

function heldWrite(this: ServerResponse, ...args: unknown[]): unknown {
  return holdOf(this)!.call(this, 'write', args);
}

function heldEnd(this: ServerResponse, ...args: unknown[]): unknown {
  return holdOf(this)!.call(this, 'end', args);
}

function heldFlushHeaders(this: ServerResponse): void {
  holdOf(this)!.call(this, 'flushHeaders', []);
}
