// Express 5 — answering 503 + Retry-After from a middleware mounted before the routes:
// directly (res.status().set().send()) or via next(err) to finalhandler / a user error middleware.
import http from 'node:http';
import { recorder, request, listen, sleep, load } from './_harness.mjs';

const express = load('express');
let scenario;
const busy = () => Object.assign(new Error('busy, retry'), { status: 503, expose: true, headers: { 'Retry-After': '2' } });

function build(mode, withErrorMw) {
  const app = express();
  app.use((req, res, next) => {
    if (mode === 'direct') { res.status(503).set('Retry-After', '2').send('busy, retry'); scenario.log('sent-sync'); return; }
    next(busy());
  });
  app.get('/', (req, res) => { scenario.log('handler'); res.send('ok'); });
  if (withErrorMw) app.use((err, req, res, _next) => { scenario.log(`errorMw(${err.status})`); res.status(err.status ?? 500).send('custom error page'); });
  return app;
}
for (const [mode, withErrorMw] of [['direct', false], ['next(err)', false], ['next(err)', true]]) {
  const server = http.createServer(build(mode, withErrorMw));
  const port = await listen(server);
  scenario = recorder(`${mode}${withErrorMw ? ' + user error middleware' : ' (finalhandler)'}`);
  const got = await request(port, '/');
  const [head, body = ''] = got.raw.split('\r\n\r\n');
  scenario.log(`client(${got.head.slice(9)}; retry-after=${/^retry-after: (.*)$/im.exec(head)?.[1]}; body=${JSON.stringify(body.replace(/\s+/g, ' ').slice(0, 40))})`);
  await sleep(10);
  scenario.dump();
  server.close();
}
