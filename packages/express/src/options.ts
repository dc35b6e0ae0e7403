import { type Logger } from '@closeguard/core';
import { checkHostOptions, type HostOptions } from '@closeguard/core/host';

/** Options of `gateway()`: those every host takes. Durations are milliseconds, sizes bytes. */
export interface GatewayOptions extends HostOptions {
  /** Largest request body `env.body` yields; past it, iteration throws a 413 error. Default 1 MiB. */
  bodyLimit?: number;
}

/** `gateway()`'s options once checked, with defaults filled in. */
export interface GatewaySettings {
  abortGrace: number | undefined;
  highWaterMark: number | undefined;
  bodyLimit: number;
  logger: Logger;
}

const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Checks `gateway()`'s options and fills in defaults.
 * @throws TypeError naming the option that is wrong.
 */
export function checkGatewayOptions(options: GatewayOptions): GatewaySettings {
  checkHostOptions('gateway', options);
  return {
    abortGrace: options.abortGrace,
    highWaterMark: options.highWaterMark,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT_BYTES,
    logger: options.logger ?? console,
  };
}
