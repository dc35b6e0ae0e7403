// Q5: Fastify 5 — reply.send(plain async iterable) vs Readable vs web ReadableStream;
// what the client gets, and whether the source is ended on a hang-up.
import { Readable } from 'node:stream';
import { recorder, request, sleep, load, endlessSource } from './_harness.mjs';

const Fastify = load('fastify');
let scenario;
const log = (e) => scenario.log(e);
async function* rows(n = Infinity) {
  try { for (let i = 0; i < n; i++) { await sleep(2); yield `row${i}\n`.padEnd(16 * 1024, ' '); } } finally { log('source-finally'); }
}
const app = Fastify({ logger: false });
app.addHook('onRequest', async (request, reply) => { reply.raw.on('close', () => log('res:close')); });
app.get('/iterable', (req, reply) => reply.type('text/plain').send(rows(3)));
app.get('/iterable-json', (req, reply) => reply.send(rows(3)));
app.get('/iterable-async-return', async () => rows(3));
app.get('/readable', (req, reply) => reply.type('text/plain').send(endlessSource(Readable, log)));
app.get('/web', (req, reply) => reply.type('text/plain').send(ReadableStream.from(rows())));
app.get('/late-readable', async (req, reply) => { await sleep(150); log('handler:send-stream'); return reply.type('text/plain').send(endlessSource(Readable, log)); });
await app.listen({ port: 0, host: '127.0.0.1' });
const port = app.server.address().port;

for (const [label, path, hangUp] of [
  ['async iterable, text/plain', '/iterable'], ['async iterable, no type', '/iterable-json'],
  ['async handler returns iterable', '/iterable-async-return'],
  ['Readable, hang-up', '/readable', 'first-data'], ['Readable sent after hang-up', '/late-readable', 30], ['web ReadableStream, hang-up', '/web', 'first-data'],
]) {
  scenario = recorder(label);
  const got = await request(port, path, { hangUp });
  const body = got.raw.split('\r\n\r\n')[1] ?? '';
  log(`client:closed(${got.head}; body=${JSON.stringify(body.slice(0, 20))}${body.length > 20 ? '…' : ''})`);
  await sleep(path === '/late-readable' ? 250 : 100);
  scenario.dump();
}
await app.close();
