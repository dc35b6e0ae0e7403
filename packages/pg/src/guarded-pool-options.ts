import { CloseguardTypeError } from '@closeguard/core';
import type pg from 'pg';
import type { GuardedPoolOptions } from './guarded-pool.ts';

const OPTION_NAMES = new Set(['abortGrace', 'logger']);

/**
 * Checks `new GuardedPool(config, options)`'s arguments before pg.Pool sees them (it copies any
 * value into its options without a word).
 * @throws CloseguardTypeError `ERR_CLOSEGUARD_INVALID_ARGUMENT` for a config or options that is
 * not an object, `ERR_CLOSEGUARD_INVALID_OPTION` naming a wrong option.
 */
export function checkGuardedPoolArguments(config: unknown, options: unknown): GuardedPoolOptions {
  if (config !== undefined && !isPlainObject(config)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `new GuardedPool(config) takes pg.Pool's config object ({ connectionString, max, … }); received ${describe(config)}`);
  }
  const max = (config as pg.PoolConfig | undefined)?.max;
  if (max !== undefined && !(typeof max === 'number' && Number.isInteger(max) && max >= 1)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `config.max must be an integer ≥ 1 (the most clients the pool opens); received ${describe(max)}`);
  }
  if (!isPlainObject(options)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_ARGUMENT', `new GuardedPool(config, options) takes an options object ({ abortGrace, logger }); received ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `GuardedPool has no option ${name} (it takes abortGrace and logger; pg.Pool's own go in the first argument)`);
  }
  const { abortGrace, logger } = options;
  if (abortGrace !== undefined && !(typeof abortGrace === 'number' && abortGrace >= 0)) {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option abortGrace must be a number of milliseconds ≥ 0; received ${describe(abortGrace)}`);
  }
  if (logger !== undefined && typeof (logger as Partial<GuardedPoolOptions['logger']> | null)?.error !== 'function') {
    throw new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `option logger must have an error() method (console fits); received ${describe(logger)}`);
  }
  return options;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  if (typeof value === 'number') return String(value);
  return typeof value;
}
