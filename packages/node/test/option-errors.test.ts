import { describe, expect, it } from 'vitest';
import { CloseguardTypeError } from '@closeguard/core';
import { requestListener } from '@closeguard/node';

describe('a wrong option or argument in @closeguard/node', () => {
  it.each([
    ['app', () => requestListener('app' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /requestListener\(app\)/],
    ['options', () => requestListener(() => [], 5 as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['abortGrace', () => requestListener(() => [], { abortGrace: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /abortGrace/],
    ['bodyLimit', () => requestListener(() => [], { bodyLimit: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /bodyLimit/],
    ['highWaterMark', () => requestListener(() => [], { highWaterMark: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /highWaterMark/],
    ['logger', () => requestListener(() => [], { logger: {} as never }), 'ERR_CLOSEGUARD_INVALID_OPTION', /logger/],
  ])('a wrong %s throws a TypeError with its code and a message naming it', (_name, call, code, message) => {
    expect(call).toThrow(CloseguardTypeError);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(message);
    expect(call).toThrow(expect.objectContaining({ code }) as Error);
  });
});
