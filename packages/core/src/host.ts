// What hosts and framework adapters use (`@closeguard/core/host`): the body driver, the request
// scope a host creates and closes, a request's leases. Applications use `@closeguard/core`.
export { createScope } from './host/scope.ts';
export { DEFAULT_ABORT_GRACE_MS, drive } from './host/driver.ts';
export { GatewayReadable } from './host/body-stream.ts';
export { HostRequest } from './host/host-request.ts';
export { closeReason } from './host/close-reason.ts';
export { checkHostOptions, checkLogger } from './host/host-options.ts';
export { enterGuard, leasesFor } from './guard/middleware.ts';
export { createCheckouts } from './guard/checkouts.ts';
export { poolCheckouts } from './guard/pool.ts';
export { checkTransactionOption } from './guard/transaction-options.ts';

export type { HostScope, ScopeOptions } from './host/scope.ts';
export type { HostRequestOptions } from './host/host-request.ts';
export type { HostOptions } from './host/host-options.ts';
export type { DriveOptions, Driven, HostEnv } from './host/driver.ts';
export type { BodyOutcome } from './host/cursor.ts';
export type { RequestLeases } from './guard/leases.ts';
export type { Waiting } from './guard/admission.ts';
export type { Checkouts, CheckoutsLogger, CheckoutsOptions } from './guard/checkouts.ts';
export type { CheckoutCallback, GiveBack } from './guard/request-checkouts.ts';
export type { CheckoutPool } from './guard/pool.ts';
export type { TransactionMode, TransactionSettings } from './guard/transaction-options.ts';
