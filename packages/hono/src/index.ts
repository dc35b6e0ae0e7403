export { connectionClosing } from './connection-closing.ts';
export { gateway } from './gateway.ts';
export { transaction } from './transaction.ts';

export type { ConnectionClosing, ConnectionClosingEnv, Db, HonoAdapterOptions } from './connection-closing.ts';
export type { GatewayOptions } from './gateway.ts';
