import type { Logger } from '@closeguard/core';
import { checkHostOptions, type HostOptions } from '@closeguard/core/host';
import type { ServeSettings } from './serve.ts';

/** Options of every framework's `gateway()`: those every host takes. Durations in ms, sizes in bytes. */
export type GatewayOptions = HostOptions;

/** A gateway's options once checked, with defaults filled in. */
export interface GatewaySettings extends ServeSettings {
  abortGrace: number | undefined;
  highWaterMark: number | undefined;
  bodyLimit: number;
  logger: Logger;
}

/** A request body's limit when neither the options nor the framework set one: 1 MiB. */
const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Checks a `gateway()`'s options and fills in defaults (the framework's own body limit, when it has one).
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_OPTION` naming the option that is wrong.
 * @example
 * const settings = checkGatewayOptions(options, fastify.initialConfig.bodyLimit);
 */
export function checkGatewayOptions(options: unknown, defaultBodyLimit = DEFAULT_BODY_LIMIT_BYTES): GatewaySettings {
  checkHostOptions('gateway', options);
  return {
    abortGrace: options?.abortGrace,
    highWaterMark: options?.highWaterMark,
    bodyLimit: options?.bodyLimit ?? defaultBodyLimit,
    logger: options?.logger ?? console,
  };
}
