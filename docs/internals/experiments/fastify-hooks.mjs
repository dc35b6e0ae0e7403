// Q4: Fastify 5 — hook order per scenario, relative to raw res 'finish'/'close' and request.signal.
import { Readable } from 'node:stream';
import { recorder, request, sleep, load, endlessSource } from './_harness.mjs';

const Fastify = load('fastify');
let scenario;
const log = (e) => scenario.log(e);

async function build({ allHooks = true, ...opts } = {}) {
  const app = Fastify({ logger: false, ...opts });
  app.addHook('onRequest', async (request, reply) => {
    log('onRequest');
    reply.raw.on('finish', () => log('res:finish'));
    reply.raw.on('close', () => log('res:close'));
    request.signal.addEventListener('abort', () => log(`signal:abort(${request.signal.reason?.code ?? request.signal.reason?.name})`));
  });
  if (allHooks) {
    app.addHook('preHandler', async () => log('preHandler'));
    app.addHook('preSerialization', async (req, reply, payload) => { log('preSerialization'); return payload; });
    app.addHook('onSend', async (req, reply, payload) => { log(`onSend(${payload?.constructor?.name ?? typeof payload})`); return payload; });
    app.addHook('onResponse', async (req, reply) => log(`onResponse(${reply.statusCode})`));
    app.addHook('onError', async (req, reply, err) => log(`onError(${err.code ?? err.message})`));
    app.addHook('onRequestAbort', async (_req) => log('onRequestAbort')); // async form must take exactly 1 arg
    app.addHook('onTimeout', async () => log('onTimeout'));
    app.setErrorHandler((err, req, reply) => { log(`errorHandler(${err.code ?? err.message})`); reply.code(500).send({ error: err.message }); });
  }
  app.get('/ok', async () => { await sleep(20); log('handler:return'); return { ok: true }; });
  app.get('/throw', async () => { await sleep(20); throw new Error('boom'); });
  app.post('/post-late-return', async () => { await sleep(150); log('handler:return'); return { late: true }; });
  app.get('/late-return', async () => { await sleep(150); log('handler:return'); return { late: true }; });
  app.get('/late-undefined', async () => { await sleep(150); log('handler:return-undefined'); });
  app.get('/late-throw', async () => { await sleep(150); log('handler:throw'); throw new Error('late-boom'); });
  app.get('/late-cb-send', (req, reply) => { setTimeout(() => { log('handler:reply.send'); reply.send({ late: true }); }, 150); });
  app.get('/stream', (req, reply) => reply.type('text/plain').send(endlessSource(Readable, log)));
  app.get('/slow', async () => { await sleep(200); log('handler:return'); return { slow: true }; });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app;
}

async function run(app, label, path, hangUp, wait) {
  scenario = recorder(label);
  const post = path.startsWith('/post') && { method: 'POST', body: '{"a":1}' };
  const got = await request(app.server.address().port, path, { hangUp, ...post });
  log(`client:closed(${got.head || 'nothing'})`);
  await sleep(wait);
  scenario.dump();
}

const app = await build();
await run(app, 'success', '/ok', undefined, 50);
await run(app, 'handler throws', '/throw', undefined, 50);
await run(app, 'hang-up, async returns value', '/late-return', 30, 200);
await run(app, 'POST with body, hang-up, async returns', '/post-late-return', 30, 200);
await run(app, 'hang-up, async returns undefined', '/late-undefined', 30, 200);
await run(app, 'hang-up, async throws', '/late-throw', 30, 200);
await run(app, 'hang-up, callback reply.send', '/late-cb-send', 30, 200);
await run(app, 'hang-up mid reply.send(stream)', '/stream', 'first-data', 200);
await app.close();

const bare = await build({ allHooks: false });
await run(bare, 'success, no onResponse hook', '/ok', undefined, 50);
await bare.close();

const ct = await build({ connectionTimeout: 60 });
await run(ct, 'connectionTimeout 60, handler 200', '/slow', undefined, 250);
await ct.close();

const ht = await build({ handlerTimeout: 60 });
await run(ht, 'handlerTimeout 60, handler 200', '/slow', undefined, 250);
await ht.close();
