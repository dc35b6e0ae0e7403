export { CloseguardError, ContractError, errorCatalog, getErrorStatus, isCloseguardError } from './errors.ts';
export { createScope, currentScope } from './scope.ts';
export { channelNames, signals } from './signals.ts';
export { DEFAULT_ABORT_GRACE_MS, drive } from './driver.ts';
export { GatewayReadable } from './body-stream.ts';
export { ConnectionClosingMiddleware, leasesFor } from './middleware.ts';
export { connection } from './connection.ts';
export { HostRequest } from './host-request.ts';
export { checkHostOptions, checkLogger } from './host-options.ts';
export { poolPolicy } from './pool.ts';
export { validate } from './validate.ts';

export type { ErrorCode } from './errors.ts';
export type { HostScope, ScopeOptions } from './scope.ts';
export type { HostRequestOptions } from './host-request.ts';
export type { HostOptions } from './host-options.ts';
export type { LeakMessage, RequestExceptionMessage, RequestFinishedMessage, RequestStartedMessage, Signal } from './signals.ts';
export type { DriveOptions, Driven, HostEnv } from './driver.ts';
export type { BodyOutcome } from './cursor.ts';
export type { ConnectionClosingOptions, LeakReport } from './options.ts';
export type { Waiting } from './admission.ts';
export type { PoolLike, PoolPolicy } from './pool.ts';
export type { GuardStats, PoolStats } from './stats.ts';
export type { RequestLeases } from './leases.ts';
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
} from './types.ts';
