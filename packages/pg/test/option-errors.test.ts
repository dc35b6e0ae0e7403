import { describe, expect, it } from 'vitest';
import { CloseguardTypeError } from '@closeguard/core';
import { createPool, fromPgPool } from '@closeguard/pg';

describe('a wrong option or argument in @closeguard/pg', () => {
  it.each([
    ['createPool() without acquireTimeoutMillis', () => createPool({}, { acquireTimeoutMillis: 0 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /acquireTimeoutMillis/],
    ['fromPgPool() given no pg.Pool', () => fromPgPool({} as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /fromPgPool\(pool\)/],
  ])('%s throws a TypeError with its code and a message naming it', (_name, call, code, message) => {
    expect(call).toThrow(CloseguardTypeError);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(message);
    expect(call).toThrow(expect.objectContaining({ code }) as Error);
  });
});
