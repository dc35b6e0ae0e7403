// Q2: Express 5 — how errors reach error middleware (async rejection, next(err) callback, sync throw),
// what next() returns to a middleware mounted before the routes, and whether router's
// diagnostics_channel ('express.router.request', router >= 2.3.0) tells when a handler settled.
import http from 'node:http';
import dc from 'node:diagnostics_channel';
import { recorder, request, listen, sleep, load } from './_harness.mjs';

const express = load('express');
let scenario;
const name = (ctx) => ctx.handler?.name || 'anonymous';
dc.tracingChannel('express.router.request').subscribe({
  start: (ctx) => scenario.log(`dc:start(${name(ctx)})`),
  end: (ctx) => scenario.log(`dc:end(${name(ctx)})`),
  asyncStart: () => {},
  asyncEnd: (ctx) => scenario.log(`dc:asyncEnd(${name(ctx)}${ctx.error ? ',error' : ''})`),
  error: (ctx) => scenario.log(`dc:error(${name(ctx)},${ctx.error?.message})`),
});

const app = express();
app.use(function guard(req, res, next) {
  const ret = next();
  scenario.log(`guard:next()returned(${ret === undefined ? 'undefined' : typeof ret})`);
  res.on('close', () => scenario.log('res:close'));
});
app.get('/async-ok', async function asyncOk(req, res) { await sleep(30); res.send('ok'); await sleep(30); scenario.log('handler:settled'); });
app.get('/async-reject', async function asyncReject() { await sleep(10); throw new Error('boom'); });
app.get('/next-err', function cbErr(req, res, next) { setTimeout(() => next(new Error('cb-boom')), 10); });
app.get('/sync-throw', function syncThrow() { throw new Error('sync-boom'); });
app.get('/reject-after-hangup', async function rejectLate() { await sleep(150); scenario.log('handler:throwing'); throw new Error('late-boom'); });
app.use(function errorMw(err, req, res, _next) {
  scenario.log(`errorMw(${err.message},headersSent=${res.headersSent},destroyed=${res.destroyed})`);
  res.status(500).send('error');
});

const port = await listen(http.createServer(app));
for (const [label, path, hangUp, wait] of [
  ['async ok (settles 30ms after send)', '/async-ok', undefined, 80], ['async reject', '/async-reject', undefined, 30],
  ['next(err) from callback', '/next-err', undefined, 30], ['sync throw', '/sync-throw', undefined, 30],
  ['reject after hang-up', '/reject-after-hangup', 30, 200],
]) {
  scenario = recorder(label);
  const got = await request(port, path, { hangUp });
  scenario.log(`client:closed(${got.head || 'nothing'})`);
  await sleep(wait);
  scenario.dump();
}
process.exit(0);
