// Q4: Fastify 5 (request.signal since 5.8, fastify/fastify#6521) — when does request.signal abort
// without a hang-up? (a) after a successful response, (b) when a POST body has been read.
import { recorder, request, sleep, load } from './_harness.mjs';

const Fastify = load('fastify');
let scenario;
const log = (e) => scenario.log(e);

async function build(opts, { onResponseHook = false, readSignalIn = 'onRequest' } = {}) {
  const app = Fastify({ logger: false, ...opts });
  const watch = (request) => request.signal.addEventListener('abort', () => log(`signal:abort(${request.signal.reason?.code ?? request.signal.reason?.name})`));
  app.addHook('onRequest', async (request, reply) => {
    reply.raw.on('close', () => log(`res:close(writableFinished=${reply.raw.writableFinished})`));
    if (readSignalIn === 'onRequest') watch(request);
  });
  if (onResponseHook) app.addHook('onResponse', async () => log('onResponse'));
  const handler = async (request) => {
    if (readSignalIn === 'handler') watch(request);
    log(`handler:start(aborted=${request.signal.aborted})`);
    await sleep(50);
    log(`handler:end(aborted=${request.signal.aborted})`);
    return { ok: true };
  };
  app.get('/get', handler);
  app.post('/post', handler);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app;
}

for (const [label, opts, flags] of [
  ['default', {}, {}],
  ['default + onResponse hook', {}, { onResponseHook: true }],
  ['handlerTimeout 1000', { handlerTimeout: 1000 }, {}],
  ['signal first read in handler', {}, { readSignalIn: 'handler' }],
]) {
  const app = await build(opts, flags);
  for (const method of ['GET', 'POST']) {
    scenario = recorder(`${method} ${label}`);
    const got = await request(app.server.address().port, `/${method.toLowerCase()}`, { method, body: method === 'POST' ? '{"a":1}' : '' });
    log(`client:closed(${got.head})`);
    await sleep(30);
    scenario.dump();
  }
  await app.close();
}
