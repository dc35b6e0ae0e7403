import { describe, expect, it } from 'vitest';
import { CloseguardTypeError } from '@closeguard/core';
import { checkHostOptions, checkLogger } from '@closeguard/core/host';

describe('checkHostOptions', () => {
  it('accepts no options, empty options and every shared option set right', () => {
    expect(() => checkHostOptions('gateway', undefined)).not.toThrow();
    expect(() => checkHostOptions('gateway', {})).not.toThrow();
    expect(() => checkHostOptions('gateway', { abortGrace: 0, bodyLimit: 1024, highWaterMark: 16, logger: console, prefix: '/x' })).not.toThrow();
  });

  it.each(['abortGrace', 'bodyLimit', 'highWaterMark'])('names %s and the function when it is not a number ≥ 0', (name) => {
    for (const value of [-1, Number.NaN, '1kb', null]) {
      expect(() => checkHostOptions('requestListener', { [name]: value })).toThrow(new CloseguardTypeError('ERR_CLOSEGUARD_INVALID_OPTION', `requestListener option ${name} must be a number ≥ 0; received ${typeof value === 'number' ? String(value) : value === null ? 'null' : typeof value}`));
    }
  });

  it('refuses options that are not an object', () => {
    expect(() => checkHostOptions('gateway', null)).toThrow(/^gateway\(app, options\) takes an options object; received null$/);
    expect(() => checkHostOptions('gateway', 'fast')).toThrow(/received string$/);
  });

  it('refuses a logger without an error() method', () => {
    expect(() => checkHostOptions('gateway', { logger: { info: () => undefined } })).toThrow(/^gateway option logger must have an error\(\) method/);
  });
});

describe('checkLogger', () => {
  it('returns the logger, or console when there is none', () => {
    const logger = { error: () => undefined };
    expect(checkLogger('connectionClosing', logger)).toBe(logger);
    expect(checkLogger('connectionClosing', undefined)).toBe(console);
  });

  it.each([null, 'console', {}, { error: 'no' }])('refuses %j, naming the function', (logger) => {
    expect(() => checkLogger('connectionClosing', logger)).toThrow(TypeError);
    expect(() => checkLogger('connectionClosing', logger)).toThrow(/^connectionClosing option logger must have an error\(\) method/);
  });
});
