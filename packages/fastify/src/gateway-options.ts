import { type Logger } from '@closeguard/core';
import { checkHostOptions, type HostOptions } from '@closeguard/core/host';

/** The options `gateway` shares with @closeguard/node's `requestListener`. Durations in ms, sizes in bytes. */
export interface GatewayOptions extends HostOptions {
  /** Largest request body `env.body` yields; past it, iteration throws a 413 error. Default: Fastify's `bodyLimit` (1 MiB). */
  bodyLimit?: number;
}

/** The checked options, with defaults filled in. */
export interface GatewaySettings {
  abortGrace: number | undefined;
  bodyLimit: number;
  highWaterMark: number | undefined;
  logger: Logger;
}

/**
 * Checks the gateway's options.
 * @throws TypeError naming the option that is wrong.
 */
export function checkGatewayOptions(options: GatewayOptions, defaultBodyLimit: number): GatewaySettings {
  checkHostOptions('gateway', options);
  return {
    abortGrace: options.abortGrace,
    bodyLimit: options.bodyLimit ?? defaultBodyLimit,
    highWaterMark: options.highWaterMark,
    logger: options.logger ?? console,
  };
}
