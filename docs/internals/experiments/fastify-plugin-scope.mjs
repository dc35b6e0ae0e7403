// Q7: Fastify 5 — encapsulation with and without fastify-plugin, registration order, and the
// decorateRequest rules for reference types.
import { recorder, request, sleep, load } from './_harness.mjs';

const Fastify = load('fastify');
const fp = load('fastify-plugin');
let scenario;
const log = (e) => scenario.log(e);

function guardPlugin(app, _opts, done) {
  app.decorateRequest('db', null);
  app.addHook('onRequest', async (req) => { req.db = `lease-for-${req.url}`; log('guard:onRequest'); });
  done();
}

async function build({ wrap, order }) {
  const app = Fastify({ logger: false });
  const plugin = wrap ? fp(guardPlugin, { name: 'guard', fastify: '5.x' }) : guardPlugin;
  const route = () => app.get('/root', async (req) => { log(`root-handler(db=${req.db})`); return 'ok'; });
  if (order === 'routes-first') route();
  app.register(plugin);
  if (order !== 'routes-first') route();
  app.register(async (child) => child.get('/child', async (req) => { log(`child-handler(db=${req.db})`); return 'ok'; }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app;
}

for (const [label, opts] of [
  ['no fastify-plugin', { wrap: false }], ['fastify-plugin', { wrap: true }],
  ['fastify-plugin, route declared before register', { wrap: true, order: 'routes-first' }],
]) {
  const app = await build(opts);
  for (const path of ['/root', '/child']) {
    scenario = recorder(`${label} ${path}`);
    const got = await request(app.server.address().port, path);
    log(`client(${got.head.slice(9)})`);
    await sleep(10);
    scenario.dump();
  }
  await app.close();
}

scenario = recorder('decorateRequest reference types');
for (const [what, value] of [['{}', {}], ['[]', []], ['null', null], ['function', () => 1], ['{getter}', { getter() { return 1; } }]]) {
  try { Fastify().decorateRequest('db', value); log(`${what}:ok`); } catch (e) { log(`${what}:${e.code}`); }
}
scenario.dump();
