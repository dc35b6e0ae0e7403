import { ContractError } from './errors.ts';
import type { Chunk, GatewayBody, Headers } from './types.ts';

// Checks of the gateway contract shared by the body driver (rule 6) and validate().

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 field-value characters: HTAB, SP, VCHAR, obs-text. Node's HTTP/1 refuses the rest; its HTTP/2 mangles them.
const FORBIDDEN_IN_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** Throws unless `status` is an integer from 100 to 599. */
export function checkStatus(status: unknown): asserts status is number {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new ContractError('ERR_CLOSEGUARD_INVALID_STATUS', `start() got status ${describe(status)}`);
  }
}

/** Throws unless every header name is a token and every value a string of field-value characters. */
export function checkHeaders(headers: unknown, status: number): asserts headers is Headers {
  if (typeof headers !== 'object' || headers === null) {
    throw new ContractError('ERR_CLOSEGUARD_INVALID_HEADER_NAME', `start() got headers ${describe(headers)}`);
  }
  if (Array.isArray(headers)) {
    for (const pair of headers as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new ContractError('ERR_CLOSEGUARD_INVALID_HEADER_NAME', `start() got header entry ${describe(pair)}`);
      }
      checkHeader(pair[0], pair[1], status);
    }
    return;
  }
  for (const name in headers) {
    const value = (headers as Record<string, unknown>)[name];
    if (Array.isArray(value)) for (const item of value as unknown[]) checkHeader(name, item, status);
    else checkHeader(name, value, status);
  }
}

function checkHeader(name: unknown, value: unknown, status: number): void {
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    throw new ContractError('ERR_CLOSEGUARD_INVALID_HEADER_NAME', `header name ${describe(name)} is not an HTTP token`);
  }
  if (typeof value !== 'string' || FORBIDDEN_IN_VALUE.test(value)) {
    throw new ContractError(
      'ERR_CLOSEGUARD_INVALID_HEADER_VALUE',
      `header ${name} has the value ${describe(value)}`,
    );
  }
  if ((status === 204 || status === 304) && name.length === 12 && name.toLowerCase() === 'content-type') {
    throw new ContractError('ERR_CLOSEGUARD_CONTENT_TYPE_FORBIDDEN', `a ${status} response has Content-Type`);
  }
}

/** Whether `chunk` is bytes or a string. */
export function isChunk(chunk: unknown): chunk is Chunk {
  return typeof chunk === 'string' || chunk instanceof Uint8Array;
}

/** The error for a chunk of the wrong type. */
export function invalidChunk(chunk: unknown): ContractError {
  return new ContractError('ERR_CLOSEGUARD_INVALID_CHUNK', `the body yielded ${describe(chunk)}`);
}

/** Throws unless an app's answer is an iterable of chunks (and not a bare string or buffer). */
export function checkAnswer(answer: unknown): asserts answer is GatewayBody {
  const iterable =
    typeof answer === 'object' &&
    answer !== null &&
    !(answer instanceof Uint8Array) &&
    (typeof (answer as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function' ||
      typeof (answer as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function');
  if (!iterable) {
    throw new ContractError('ERR_CLOSEGUARD_BODY_NOT_ITERABLE', `the app answered ${describe(answer)}`);
  }
}

/** A short, safe description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'undefined') return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (value instanceof Uint8Array) return `a ${value.constructor.name} of ${value.length} bytes`;
  if (Array.isArray(value)) return 'an array';
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/** Whether `value` is a promise or promise-like. */
export function isThenable<T = unknown>(value: unknown): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/** Calls `close()` on an answer that never became a body (no host will), isolating its error. */
export function closeStray(answer: unknown, onError: (error: unknown) => void): void {
  const close = (answer as { close?: unknown } | null | undefined)?.close;
  if (typeof close !== 'function') return;
  try {
    const result: unknown = close.call(answer);
    if (isThenable(result)) Promise.resolve(result).catch(onError);
  } catch (error) {
    onError(error);
  }
}
