import { describe, expect, it } from 'vitest';
import { CloseguardTypeError, ConnectionClosingMiddleware, type GatewayApp } from '@closeguard/core';
import { connectionClosing, gateway } from '@closeguard/hono';

const pool = { acquire: () => Promise.resolve(1), release: () => undefined, destroy: () => undefined };
const app: GatewayApp = () => [];

describe('a wrong option or argument in @closeguard/hono', () => {
  it.each([
    ['connectionClosing(null)', () => connectionClosing(null as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['pool', () => connectionClosing({ pool: {} as never }), 'ERR_CLOSEGUARD_INVALID_OPTION', /option pool/],
    ['backpressure', () => connectionClosing({ pool, backpressure: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /backpressure/],
    ['connectionClosing(guard, options)', () => connectionClosing(new ConnectionClosingMiddleware({ pool, backpressure: 1 }), 'quiet' as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['logger', () => connectionClosing(new ConnectionClosingMiddleware({ pool, backpressure: 1 }), { logger: {} as never }), 'ERR_CLOSEGUARD_INVALID_OPTION', /logger/],
    ['gateway(app)', () => gateway('app' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /gateway\(app\)/],
    ['gateway options', () => gateway(app, 5 as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['abortGrace', () => gateway(app, { abortGrace: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /abortGrace/],
    ['prefix', () => gateway(app, { prefix: 'api' }), 'ERR_CLOSEGUARD_INVALID_OPTION', /option prefix/],
  ])('%s throws a TypeError with its code and a message naming it', (_name, call, code, message) => {
    expect(call).toThrow(CloseguardTypeError);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(message);
    expect(call).toThrow(expect.objectContaining({ code }) as Error);
  });
});
