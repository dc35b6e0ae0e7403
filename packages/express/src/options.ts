import type { Logger } from '@closeguard/core';

/** Options of `gateway()`. Durations are milliseconds, sizes bytes. */
export interface GatewayOptions {
  /** How long to wait, after the client hangs up, for a body stuck at an `await`. Default 5000. */
  abortGrace?: number;
  /** Largest request body `env.body` yields; past it, iteration throws a 413 error. Default 1 MiB. */
  bodyLimit?: number;
  /** Bytes of response body read ahead of the socket. Default 16 KiB. */
  highWaterMark?: number;
  /** Where errors after the headers and cleanup errors are logged. Default: console. */
  logger?: Logger;
}

const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Checks `gateway()`'s options and fills in defaults.
 * @throws TypeError naming the option that is wrong.
 */
export function checkGatewayOptions(options: GatewayOptions): { abortGrace: number | undefined; highWaterMark: number | undefined; bodyLimit: number; logger: Logger } {
  if (typeof options !== 'object' || options === null) throw new TypeError(`gateway(app, options) takes an options object; received ${options === null ? 'null' : typeof options}`);
  for (const name of ['abortGrace', 'bodyLimit', 'highWaterMark'] as const) {
    const value: unknown = options[name];
    if (value !== undefined && !(typeof value === 'number' && value >= 0 && !Number.isNaN(value))) {
      throw new TypeError(`gateway option ${name} must be a number ≥ 0; received ${typeof value === 'number' ? value : typeof value}`);
    }
  }
  return {
    abortGrace: options.abortGrace,
    highWaterMark: options.highWaterMark,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT_BYTES,
    logger: checkLogger('gateway', options.logger),
  };
}

/**
 * Checks a `logger` option (`where` names the function, for the message); returns it, or console.
 * @throws TypeError unless it is undefined or has an error() method.
 */
export function checkLogger(where: string, logger: Logger | undefined): Logger {
  if (logger !== undefined && typeof (logger as Partial<Logger> | null)?.error !== 'function') {
    throw new TypeError(`${where} option logger must have an error() method (console and pino loggers fit)`);
  }
  return logger ?? console;
}
