// What applications use. Adapter and host authors: `@closeguard/core/host` (docs/internals/write-an-adapter.md).
export { CloseguardError, CloseguardTypeError, ContractError, errorCatalog, getErrorStatus, isCloseguardError } from './contract/errors.ts';
export { validate } from './contract/validate.ts';
export { currentScope } from './host/scope.ts';
export { channelNames, signals } from './host/signals.ts';
export { ConnectionClosingMiddleware } from './guard/middleware.ts';
export { connection } from './guard/connection.ts';
export { transaction } from './guard/transaction-route.ts';
export { poolPolicy } from './guard/pool.ts';

export type { ErrorCode } from './contract/errors.ts';
export type { LeakMessage, RequestExceptionMessage, RequestFinishedMessage, RequestStartedMessage, Signal } from './host/signals.ts';
export type { ConnectionClosingOptions, LeakReport } from './guard/options.ts';
export type { JoinedCheckout, PoolLike, PoolPolicy } from './guard/pool.ts';
export type { TransactionOptions } from './guard/transaction-options.ts';
export type { GuardStats, PoolStats } from './guard/stats.ts';
export type {
  AbortReason,
  Chunk,
  Cleanup,
  CloseReason,
  ErrorPhase,
  GatewayApp,
  GatewayBody,
  GatewayEnv,
  GatewayMiddleware,
  Headers,
  Logger,
  Register,
  RegisteredConnection,
  RequestScope,
  StartResponse,
} from './contract/types.ts';
