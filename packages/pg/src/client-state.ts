import type pg from 'pg';

/** What @closeguard/pg remembers of each client. */
export interface ClientState {
  createdAt: number;
  /** Set once the client emitted 'error' or its connection ended: never reuse it. */
  broken: boolean;
}

const states = new WeakMap<pg.Client, ClientState>();

/**
 * Starts watching a client: an 'error' or 'end' marks it unusable. The 'error' listener also keeps
 * an idle client's socket error from crashing the process (pg emits it with no other listener).
 */
export function watch(client: pg.Client): ClientState {
  let state = states.get(client);
  if (state) return state;
  const created: ClientState = { createdAt: Date.now(), broken: false };
  const breakIt = (): void => {
    created.broken = true;
  };
  client.on('error', breakIt);
  client.on('end', breakIt);
  states.set(client, created);
  state = created;
  return state;
}

export function stateOf(client: pg.Client): ClientState | undefined {
  return states.get(client);
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
