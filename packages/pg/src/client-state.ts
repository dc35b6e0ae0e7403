import type pg from 'pg';

/** What @closeguard/pg remembers of each client. */
export interface ClientState {
  createdAt: number;
  /** Set once the client emitted 'error' or its connection ended: never reuse it. */
  broken: boolean;
}

/**
 * Where a client's state lives: a symbol slot on the client (read several times per request by the
 * release policy, where a WeakMap lookup costs a hash each time; a pg.Client is ours to tag, as
 * the per-request state of the adapters lives in slots).
 */
const stateSlot: unique symbol = Symbol('closeguard.pg.client');

type Slotted = pg.Client & { [stateSlot]?: ClientState };

/**
 * Starts watching a client: an 'error' or 'end' marks it unusable. The 'error' listener also keeps
 * an idle client's socket error from crashing the process (pg emits it with no other listener).
 */
export function watch(client: pg.Client): ClientState {
  let state = (client as Slotted)[stateSlot];
  if (state) return state;
  const created: ClientState = { createdAt: Date.now(), broken: false };
  const breakIt = (): void => {
    created.broken = true;
  };
  client.on('error', breakIt);
  client.on('end', breakIt);
  (client as Slotted)[stateSlot] = created;
  state = created;
  return state;
}

export function stateOf(client: pg.Client): ClientState | undefined {
  return (client as Slotted)[stateSlot];
}

/** PostgreSQL's transaction status from the last ReadyForQuery: idle, in a transaction, or in a failed one. */
export type TransactionStatus = 'idle' | 'transaction' | 'failed' | 'unknown';

export function transactionStatus(client: pg.Client): TransactionStatus {
  const status = (client as pg.Client & { getTransactionStatus?(): string | null }).getTransactionStatus?.();
  switch (status) {
    case 'I':
      return 'idle';
    case 'T':
      return 'transaction';
    case 'E':
      return 'failed';
    default:
      return 'unknown';
  }
}

/** True while a query runs or waits on the client. */
export function isBusy(client: pg.Client): boolean {
  if (stateOf(client)?.broken === true) return false; // nothing runs on a dead connection
  return (client as pg.Client & { readyForQuery?: boolean }).readyForQuery === false;
}
