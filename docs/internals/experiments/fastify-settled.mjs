// Q4: Fastify 5 — can a plugin learn that the handler settled after a hang-up? Compares onSend with
// the 'fastify.request.handler' TracingChannel (end / asyncEnd; present since Fastify 5.0) and a
// handler wrapped from an onRoute hook (wrap:settled).
import dc from 'node:diagnostics_channel';
import { recorder, request, sleep, load } from './_harness.mjs';

const Fastify = load('fastify');
let scenario;
const log = (e) => scenario.log(e);
dc.tracingChannel('fastify.request.handler').subscribe({
  start: () => log('dc:start'), end: () => log('dc:end'), asyncStart: () => {},
  asyncEnd: (m) => log(`dc:asyncEnd${m.error ? '(error)' : ''}`), error: () => log('dc:error'),
});
const app = Fastify({ logger: false, handlerTimeout: 1000 });
app.addHook('onRoute', (route) => {
  const inner = route.handler;
  route.handler = function wrapped(req, reply) {
    const ret = inner.call(this, req, reply);
    if (ret && typeof ret.then === 'function') ret.then(() => log('wrap:settled'), () => log('wrap:settled(rejected)'));
    else log('wrap:returned-sync');
    return ret;
  };
});
app.addHook('onRequest', async (req, reply) => { reply.raw.on('close', () => log('res:close')); });
app.addHook('onSend', async (req, reply, p) => { log('onSend'); return p; });
app.get('/value', { handlerTimeout: 60 }, async () => { await sleep(150); log('handler:return'); return { late: true }; });
app.get('/undefined', async () => { await sleep(150); log('handler:return-undefined'); });
app.get('/callback', (req, reply) => { setTimeout(() => { log('handler:reply.send'); reply.send('late'); }, 150); });
app.get('/throw', async () => { await sleep(150); log('handler:throw'); throw new Error('late'); });
await app.listen({ port: 0, host: '127.0.0.1' });
for (const [label, path, hangUp] of [
  ['handlerTimeout 60 (no hang-up)', '/value'], ['hang-up, async returns undefined', '/undefined', 30],
  ['hang-up, callback reply.send', '/callback', 30], ['hang-up, async throws', '/throw', 30],
]) {
  scenario = recorder(label);
  const got = await request(app.server.address().port, path, { hangUp });
  log(`client:closed(${got.head.slice(9) || 'nothing'})`);
  await sleep(200);
  scenario.dump();
}
await app.close();
