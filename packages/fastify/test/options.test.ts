import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionClosingMiddleware, type GatewayApp } from '@closeguard/core';
import * as exported from '@closeguard/fastify';
import { connectionClosing, gateway } from '@closeguard/fastify';

const pool = { max: 1, acquire: () => Promise.resolve({}), release: () => undefined, destroy: () => undefined };
const app: GatewayApp = (_env, start) => {
  start(204, {});
  return [];
};
const instances: FastifyInstance[] = [];

async function load(register: (fastify: FastifyInstance) => unknown): Promise<unknown> {
  const fastify = Fastify();
  instances.push(fastify);
  void register(fastify);
  return fastify.ready().then(() => undefined, (error: unknown) => error);
}

afterEach(async () => {
  for (const fastify of instances.splice(0)) await fastify.close().catch(() => undefined);
});

describe('@closeguard/fastify exports', () => {
  it('exports connectionClosing and gateway, and nothing else', () => {
    expect(Object.keys(exported).sort()).toEqual(['connectionClosing', 'gateway']);
  });
});

describe('connectionClosing options', () => {
  it.each([
    ['pool', { pool: 42 }],
    ['backpressure', { pool, backpressure: 0 }],
    ['abortGrace', { pool, abortGrace: -1 }],
    ['guard', { guard: {} }],
    ['logger', { pool, logger: {} }],
    ['closeTimeout', { pool, closeTimeout: Number.NaN }],
    ['closeTimeout', { guard: new ConnectionClosingMiddleware({ pool }), closeTimeout: '5s' }],
  ])('a wrong %s is a TypeError with its code, naming it', async (name, options) => {
    const error = await load((fastify) => fastify.register(connectionClosing, options as Parameters<typeof connectionClosing>[1]));
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ code: 'ERR_CLOSEGUARD_INVALID_OPTION' });
    expect((error as Error).message).toContain(name);
  });

  it('accepts an existing guard and decorates fastify.closeguard with it', async () => {
    const guard = new ConnectionClosingMiddleware({ pool });
    const fastify = Fastify();
    instances.push(fastify);
    await fastify.register(connectionClosing, { guard });
    expect(fastify.closeguard).toBe(guard);
  });
});

describe('gateway options', () => {
  it.each([
    ['app', { app: 'not a function' }],
    ['bodyLimit', { app, bodyLimit: -1 }],
    ['abortGrace', { app, abortGrace: Number.NaN }],
    ['highWaterMark', { app, highWaterMark: 'big' }],
    ['logger', { app, logger: { log: () => undefined } }],
  ])('a wrong %s is a TypeError with its code, naming it', async (name, options) => {
    const error = await load((fastify) => fastify.register(gateway, options as never));
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ code: 'ERR_CLOSEGUARD_INVALID_OPTION' });
    expect((error as Error).message).toContain(name);
  });
});
