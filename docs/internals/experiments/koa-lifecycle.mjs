// Q8: Koa 3 — order of middleware `finally` (after await next()), body streaming and res
// 'finish'/'close'; stream bodies on a hang-up; what a plain async iterable body becomes.
// Prints the Koa version; run it also from a dir with koa@3.0.x to see the pre-3.1 behaviour.
import http from 'node:http';
import { Readable } from 'node:stream';
import { recorder, request, listen, sleep, load, endlessSource } from './_harness.mjs';

const Koa = load('koa');
console.log(`koa ${load('koa/package.json').version}`);
let scenario;
const log = (e) => scenario.log(e);
async function* rows(n) {
  try { for (let i = 0; i < n; i++) { await sleep(5); log(`yield${i}`); yield `row${i}\n`; } } finally { log('source-finally'); }
}
const app = new Koa();
app.on('error', (err) => log(`app:error(${err.code ?? err.message})`));
app.use(async (ctx, next) => {
  ctx.res.on('finish', () => log('res:finish'));
  ctx.res.on('close', () => log(`res:close(writableFinished=${ctx.res.writableFinished})`));
  try { await next(); log('mw:after-next'); } finally { log('mw:finally'); }
});
app.use(async (ctx) => {
  if (ctx.path === '/stream') ctx.body = Readable.from(rows(3), { objectMode: false });
  else if (ctx.path === '/stream-hangup') { ctx.type = 'text'; ctx.body = endlessSource(Readable, log); }
  else if (ctx.path === '/web-hangup') { ctx.type = 'text'; ctx.body = ReadableStream.from(rows(Infinity)); }
  else if (ctx.path === '/iterable') ctx.body = rows(3);
  else if (ctx.path === '/late-stream') { await sleep(150); log('handler:set-stream-body'); ctx.body = endlessSource(Readable, log); }
  else if (ctx.path === '/late') { await sleep(150); log('handler:set-body'); ctx.body = 'late'; }
});

const port = await listen(http.createServer(app.callback()));
for (const [label, path, hangUp, wait] of [
  ['stream body, success', '/stream', undefined, 30], ['stream body, hang-up', '/stream-hangup', 'first-data', 100],
  ['web ReadableStream body, hang-up', '/web-hangup', 'first-data', 100],
  ['plain async iterable body', '/iterable', undefined, 30], ['handler still running at hang-up', '/late', 30, 200],
  ['stream body set after hang-up', '/late-stream', 30, 250],
]) {
  scenario = recorder(label);
  const got = await request(port, path, { hangUp });
  const body = got.raw.split('\r\n\r\n')[1] ?? '';
  log(`client:closed(${got.head.slice(9) || 'nothing'}; body=${JSON.stringify(body.slice(0, 24))})`);
  await sleep(wait);
  scenario.dump();
}
process.exit(0);
