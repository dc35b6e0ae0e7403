// Q9/Q10: Koa 3 — what app.on('error') and ctx.onerror see for middleware errors and body-stream
// errors after headers; answering 503 by throwing (status/expose/headers) vs by setting the response.
import http from 'node:http';
import { Readable } from 'node:stream';
import { recorder, request, listen, sleep, load } from './_harness.mjs';

const Koa = load('koa');
console.log(`koa ${load('koa/package.json').version}`);
let scenario;
const log = (e) => scenario.log(e);
const app = new Koa();
app.on('error', (err, ctx) => log(`app:error(${err.code ?? err.message},status=${err.status},expose=${err.expose},headerSent=${err.headerSent ?? false},ctx=${Boolean(ctx)})`));
app.use(async (ctx, next) => {
  ctx.set('X-Before', 'set-by-outer-mw');
  try { await next(); } catch (err) { log(`outer-mw:caught(${err.message})`); throw err; } finally { log('outer-mw:finally'); }
});
app.use(async (ctx) => {
  if (ctx.path === '/throw') throw new Error('boom');
  if (ctx.path === '/stream-error') {
    ctx.type = 'text';
    ctx.body = Readable.from((async function* () { yield 'first\n'; await sleep(20); throw new Error('stream-boom'); })(), { objectMode: false });
  }
  if (ctx.path === '/throw-503') throw Object.assign(new Error('busy, retry'), { status: 503, expose: true, headers: { 'Retry-After': '2' } });
  if (ctx.path === '/ctx-throw-503') ctx.throw(503, 'busy, retry', { headers: { 'Retry-After': '2' } });
  if (ctx.path === '/set-503') { ctx.status = 503; ctx.set('Retry-After', '2'); ctx.body = 'busy, retry'; }
});

const port = await listen(http.createServer(app.callback()));
for (const path of ['/throw', '/stream-error', '/throw-503', '/ctx-throw-503', '/set-503']) {
  scenario = recorder(path);
  const got = await request(port, path);
  const [head, body = ''] = got.raw.split('\r\n\r\n');
  const hdr = (n) => new RegExp(`^${n}: (.*)$`, 'im').exec(head)?.[1];
  log(`client(${got.head.slice(9)};${got.timedOut ? ' STILL-OPEN-AFTER-1s;' : ''} retry-after=${hdr('retry-after')}; x-before=${hdr('x-before')}; body=${JSON.stringify(body.slice(0, 40))})`);
  await sleep(30);
  scenario.dump();
}
process.exit(0);
