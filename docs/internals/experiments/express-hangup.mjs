// Q1: Express 5 — what res.send()/res.end() do when the handler finishes after the client hung up.
import http from 'node:http';
import { recorder, request, listen, sleep, load } from './_harness.mjs';

const express = load('express');
let scenario;
const app = express();
app.use((req, res, next) => {
  const { log } = scenario;
  res.on('finish', () => log('res:finish'));
  res.on('error', (e) => log(`res:error(${e.code})`));
  res.on('close', () => log(`res:close(writableFinished=${res.writableFinished})`));
  next();
});
const late = (method) => async (req, res) => {
  const { log } = scenario;
  await sleep(150); // client hangs up at 30 ms
  log(`before(destroyed=${res.destroyed},headersSent=${res.headersSent})`);
  try {
    if (method === 'send') res.send('late');
    else if (method === 'json') res.json({ late: true });
    else res.end('late');
    log(`after-${method}(writableEnded=${res.writableEnded},writableFinished=${res.writableFinished},headersSent=${res.headersSent})`);
  } catch (e) { log(`${method}-threw(${e.code ?? e.message})`); }
};
app.get('/ok', async (req, res) => { await sleep(20); res.send('ok'); scenario.log('handler:sent'); });
app.get('/send', late('send'));
app.get('/json', late('json'));
app.get('/end', late('end'));
app.use((err, req, res, _next) => { scenario.log(`error-mw(${err.code ?? err.message})`); res.status(500).end(); });

const port = await listen(http.createServer(app));
for (const [name, path, hangUp, wait] of [
  ['ok', '/ok', undefined, 50], ['late res.send after hang-up', '/send', 30, 200],
  ['late res.json after hang-up', '/json', 30, 200], ['late res.end after hang-up', '/end', 30, 200],
]) {
  scenario = recorder(name);
  const got = await request(port, path, { hangUp });
  scenario.log(`client:closed(${got.head || 'nothing'})`);
  await sleep(wait);
  scenario.dump();
}
process.exit(0);
