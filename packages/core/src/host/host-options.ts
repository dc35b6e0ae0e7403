import { CloseguardTypeError } from '../contract/errors.ts';
import type { Logger } from '../contract/types.ts';

/** The options every host shares: the node host's `requestListener` and the frameworks' `gateway`s. Durations in ms, sizes in bytes. */
export interface HostOptions {
  /** How long to wait, after the client hangs up, for a body stuck at an `await`. Default 5000. */
  abortGrace?: number | undefined;
  /** Largest request body `env.body` yields; past it, iteration throws a 413 error. */
  bodyLimit?: number | undefined;
  /** Bytes of response body read ahead of the socket. Default 16 KiB. */
  highWaterMark?: number | undefined;
  /** Where errors after the headers and cleanup errors are logged. Default: console. */
  logger?: Logger | undefined;
}

const AMOUNTS = ['abortGrace', 'bodyLimit', 'highWaterMark'] as const;

/**
 * Checks the options every host shares; a host checks its own ones after. `where` names the
 * function for the message (`gateway`, `requestListener`).
 * @throws CloseguardTypeError (a TypeError) `ERR_CLOSEGUARD_INVALID_OPTION` naming what is wrong:
 * options that are not an object, an amount that is not a number ≥ 0, a logger without an `error()` method.
 * @example
 * checkHostOptions('gateway', options); // options: HostOptions | undefined from here on
 */
export function checkHostOptions(where: string, options: unknown): asserts options is HostOptions | undefined {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${where}(app, options) takes an options object; received ${describe(options)}`);
  }
  for (const name of AMOUNTS) {
    const value = (options as Record<string, unknown>)[name];
    // NaN fails `>= 0` too.
    if (value !== undefined && !(typeof value === 'number' && value >= 0)) {
      throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${where} option ${name} must be a number ≥ 0; received ${describe(value)}`);
    }
  }
  checkLogger(where, (options as HostOptions).logger);
}

/**
 * Checks a `logger` option; returns it, or console when it is undefined.
 * @throws CloseguardTypeError (a TypeError) `ERR_CLOSEGUARD_INVALID_OPTION` unless it is undefined or has an `error()` method.
 */
export function checkLogger(where: string, logger: unknown): Logger {
  if (logger === undefined) return console;
  const error: unknown = typeof logger === 'object' && logger !== null ? (logger as { error?: unknown }).error : undefined;
  if (typeof error !== 'function') {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `${where} option logger must have an error() method (console and pino loggers fit); received ${describe(logger)}`);
  }
  return logger as Logger;
}

/** A received value, for a message: numbers as they are, anything else by its type. */
function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}
