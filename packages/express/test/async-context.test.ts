import { connect } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connection, ConnectionClosingMiddleware } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { quiet, useHarness } from './harness.ts';

// With asyncContext, connection() finds the request through AsyncLocalStorage. express.json()
// (body-parser 2) awaits the body with a promise, which keeps the request's async context. A
// callback-style parser calls next() from the request's 'end' event, in the socket's async context:
// the route after it runs outside the request's. The adapter patches nothing (not req.emit); the
// same guard mounted again after such a parser re-enters the request's scope.
const harness = useHarness();

/** Sends a POST whose body arrives only once the server has the request, so the parser must wait for it. */
async function slowPost(port: number, path: string, arrived: Promise<void>): Promise<string> {
  const body = JSON.stringify({ n: 1 });
  const socket = connect(port, '127.0.0.1');
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
  await arrived;
  socket.write(body); // Connection: close — the server ends the socket after its response
  let response = '';
  for await (const chunk of socket) response += String(chunk);
  return response.slice(response.indexOf('\r\n\r\n') + 4);
}

function answerCode(error: Error & { code?: string }, _req: Request, res: Response, _next: NextFunction): void {
  res.status(500).type('text/plain').send(error.code ?? error.message);
}

/** A body parser in the callback style of many older ones: next() from the request's 'end' listener. */
function callbackParser(req: Request, _res: Response, next: NextFunction): void {
  let text = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (text += chunk));
  req.on('end', () => {
    req.body = JSON.parse(text) as unknown;
    next();
  });
}

async function serve(parser: 'json' | 'callback', mountAgain: boolean): Promise<{ port: number; arrived: () => Promise<void> }> {
  const guard = new ConnectionClosingMiddleware({ pool: harness.pool(1), asyncContext: true });
  const closing = connectionClosing(guard, { logger: quiet });
  let arrivedResolve: () => void = () => undefined;
  const app = express();
  app.use((_req, _res, next) => {
    arrivedResolve();
    next();
  });
  app.use(closing);
  app.use(parser === 'json' ? express.json() : callbackParser);
  if (mountAgain) app.use(closing);
  app.post('/one', async (req, res) => {
    const client = await connection<pg.Client>();
    const { rows } = await client.query<{ n: number }>('SELECT $1::int AS n', [(req.body as { n: number }).n]);
    res.type('text/plain').send(String(rows[0]!.n));
  });
  app.use(answerCode);
  const url = await harness.listen(app);
  return {
    port: Number(new URL(url).port),
    arrived: () => new Promise<void>((resolve) => (arrivedResolve = resolve)),
  };
}

describe('connectionClosing() with asyncContext behind a body parser', () => {
  it('reaches connection() in a route after express.json(), with a body that arrives late', async () => {
    const { port, arrived } = await serve('json', false);
    expect(await slowPost(port, '/one', arrived())).toBe('1');
  });

  it('reaches connection() after a callback-style parser when mounted again after it', async () => {
    const { port, arrived } = await serve('callback', true);
    expect(await slowPost(port, '/one', arrived())).toBe('1');
  });

  it('without the second mount, says a route after a callback-style parser is outside a guarded request (and nothing leaks)', async () => {
    const { port, arrived } = await serve('callback', false);
    expect(await slowPost(port, '/one', arrived())).toBe('ERR_CLOSEGUARD_NO_REQUEST');
  });
});
