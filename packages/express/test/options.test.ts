import express from 'express';
import { describe, expect, it } from 'vitest';
import { CloseguardTypeError, ConnectionClosingMiddleware, type GatewayApp, type PoolLike } from '@closeguard/core';
import * as expressAdapter from '@closeguard/express';
import { connectionClosing, gateway } from '@closeguard/express';

const pool: PoolLike = { max: 1, acquire: () => Promise.resolve({}), release: () => undefined, destroy: () => undefined };
const app: GatewayApp = (_env, start) => {
  start(204, {});
  return [];
};

describe('@closeguard/express', () => {
  it('exports connectionClosing, gateway and transaction, and nothing else', () => {
    expect(Object.keys(expressAdapter).sort()).toEqual(['connectionClosing', 'gateway', 'transaction']);
  });

  describe('connectionClosing()', () => {
    it('carries the guard it installs as .guard', () => {
      const guard = new ConnectionClosingMiddleware({ pool });
      expect(connectionClosing(guard).guard).toBe(guard);
      expect(connectionClosing({ pool }).guard).toBeInstanceOf(ConnectionClosingMiddleware);
    });

    it('throws a TypeError naming a wrong option', () => {
      expect(() => connectionClosing({ pool, backpressure: -1 })).toThrow(TypeError);
      expect(() => connectionClosing({ pool, backpressure: -1 })).toThrow(/backpressure/);
      expect(() => connectionClosing({ pool, abortGrace: Number.NaN })).toThrow(/abortGrace/);
      expect(() => connectionClosing({ pool }, { logger: {} as Console })).toThrow(/logger/);
      expect(() => connectionClosing(null as never)).toThrow(TypeError);
    });
  });

  describe('gateway()', () => {
    it('throws a TypeError when app is not a function', () => {
      expect(() => gateway('app' as never)).toThrow(/gateway app function; received string/);
    });

    it('throws a TypeError naming a wrong option', () => {
      expect(() => gateway(app, { bodyLimit: '1kb' as never })).toThrow(/bodyLimit/);
      expect(() => gateway(app, { abortGrace: -1 })).toThrow(/abortGrace/);
      expect(() => gateway(app, { highWaterMark: Number.NaN })).toThrow(/highWaterMark/);
      expect(() => gateway(app, { logger: 'console' as never })).toThrow(/logger/);
      expect(() => gateway(app, null as never)).toThrow(TypeError);
    });

    it('mounts as an Express middleware', () => {
      expect(() => express().use('/x', gateway(app))).not.toThrow();
    });
  });

  it.each([
    ['connectionClosing(null)', () => connectionClosing(null as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['backpressure', () => connectionClosing({ pool, backpressure: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /backpressure/],
    ['logger', () => connectionClosing({ pool }, { logger: {} as Console }), 'ERR_CLOSEGUARD_INVALID_OPTION', /logger/],
    ['gateway(app)', () => gateway('app' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /gateway\(app\)/],
    ['gateway options', () => gateway(app, null as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['bodyLimit', () => gateway(app, { bodyLimit: '1kb' as never }), 'ERR_CLOSEGUARD_INVALID_OPTION', /bodyLimit/],
  ])('%s throws a CloseguardTypeError (a TypeError) with its code', (_name, call, code, message) => {
    expect(call).toThrow(CloseguardTypeError);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(message);
    expect(call).toThrow(expect.objectContaining({ code }) as Error);
  });
});
