// Q6: Fastify 5 — answering 503 from an onRequest hook: synchronously via reply.send (callback
// and async hooks), or by throwing a coded error (what setErrorHandler / the default handler see).
import { recorder, request, sleep, load } from './_harness.mjs';

const Fastify = load('fastify');
let scenario;
const log = (e) => scenario.log(e);
const busy = () => Object.assign(new Error('Service Unavailable'), { statusCode: 503, code: 'ERR_BUSY', headers: { 'retry-after': '2' } });

async function build(mode, { errorHandler = true } = {}) {
  const app = Fastify({ logger: false });
  if (mode === 'cb-send') {
    app.addHook('onRequest', (req, reply, _done) => { reply.code(503).header('retry-after', '1').send({ busy: true }); log('hook:sent-sync'); });
  } else if (mode === 'async-send-return-reply') {
    app.addHook('onRequest', async (req, reply) => { reply.code(503).header('retry-after', '1').send({ busy: true }); return reply; });
  } else if (mode === 'async-send-no-return') {
    app.addHook('onRequest', async (req, reply) => { reply.code(503).header('retry-after', '1').send({ busy: true }); });
  } else if (mode === 'cb-done-err') {
    app.addHook('onRequest', (req, reply, done) => done(busy()));
  } else if (mode === 'async-throw') {
    app.addHook('onRequest', async () => { throw busy(); });
  }
  app.addHook('onRequest', async () => log('second-onRequest'));
  app.addHook('onSend', async (req, reply, p) => { log(`onSend(${reply.statusCode})`); return p; });
  app.addHook('onError', async (req, reply, err) => log(`onError(${err.code})`));
  if (errorHandler) {
    app.setErrorHandler((err, req, reply) => {
      log(`errorHandler(code=${err.code},statusCode=${err.statusCode},reply.statusCode=${reply.statusCode},retry-after=${reply.getHeader('retry-after')})`);
      reply.send(err);
    });
  }
  app.get('/', async () => { log('handler'); return { ok: true }; });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app;
}

for (const [mode, flags] of [
  ['cb-send'], ['async-send-return-reply'], ['async-send-no-return'],
  ['cb-done-err'], ['async-throw'], ['async-throw', { errorHandler: false }],
]) {
  const app = await build(mode, flags);
  scenario = recorder(`${mode}${flags ? ' (default error handler)' : ''}`);
  const got = await request(app.server.address().port, '/');
  const retry = /retry-after: (\S+)/i.exec(got.raw)?.[1];
  log(`client(${got.head.slice(9)}; retry-after=${retry}; body=${got.raw.split('\r\n\r\n')[1]})`);
  await sleep(30);
  scenario.dump();
  await app.close();
}
