import { describe } from './checks.ts';
import { ContractError } from './errors.ts';
import type { GatewayEnv } from './types.ts';

// The host's side of a call: every env field present and typed (docs/contract.md, "The env").

type FieldCheck = readonly [field: keyof GatewayEnv, expected: string, isValid: (value: unknown) => boolean];

const ENV_FIELDS: readonly FieldCheck[] = [
  ['method', 'a string', isString],
  ['url', 'a string', isString],
  ['path', 'a string', isString],
  ['query', "a string ('' when there is none)", isString],
  ['headers', 'an object with lower-case names and string, string[] or undefined values', isHeaders],
  ['body', 'an async iterable', isAsyncIterable],
  ['signal', 'an AbortSignal', (value) => value instanceof AbortSignal],
  ['remoteAddress', 'a string or undefined', (value) => value === undefined || isString(value)],
  ['scheme', "'http' or 'https'", (value) => value === 'http' || value === 'https'],
  ['httpVersion', 'a string', isString],
  ['scope', 'a RequestScope (with defer() and close())', isScope],
  ['host', 'an object { name: string, native }', isHost],
];

/** Throws ERR_CLOSEGUARD_INVALID_ENV, naming the field, unless the host passed a complete env. */
export function checkEnv(env: unknown, start: unknown): asserts env is GatewayEnv {
  if (!isObject(env)) throw invalidEnv(`the host passed env = ${describe(env)}`);
  for (const [field, expected, isValid] of ENV_FIELDS) {
    // `in`, not `!== undefined`: remoteAddress may be undefined, but the host must still pass it.
    if (!(field in env)) throw invalidEnv(`env.${field} is missing; expected ${expected}`);
    const value = (env as Record<string, unknown>)[field];
    if (!isValid(value)) throw invalidEnv(`env.${field} is ${describe(value)}; expected ${expected}`);
  }
  if (typeof start !== 'function') throw invalidEnv(`the host passed start = ${describe(start)}; expected a function`);
}

function invalidEnv(what: string): ContractError {
  return new ContractError('ERR_CLOSEGUARD_INVALID_ENV', what);
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function isAsyncIterable(value: unknown): boolean {
  return isObject(value) && typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function';
}

function isHeaders(value: unknown): boolean {
  if (!isObject(value) || Array.isArray(value)) return false;
  return Object.entries(value).every(([name, item]) => name === name.toLowerCase() && isHeaderValue(item));
}

function isHeaderValue(value: unknown): boolean {
  return value === undefined || isString(value) || (Array.isArray(value) && value.every(isString));
}

function isScope(value: unknown): boolean {
  if (!isObject(value)) return false;
  const { defer, close } = value as { defer?: unknown; close?: unknown };
  return typeof defer === 'function' && typeof close === 'function';
}

function isHost(value: unknown): boolean {
  return isObject(value) && isString((value as { name?: unknown }).name) && 'native' in value;
}
