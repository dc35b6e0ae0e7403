// Q3: Express 5 — src.pipe(res) vs stream.pipeline(src, res) when the client hangs up mid-stream,
// with and without the `compression` middleware. Is the source destroyed (generator finally runs)?
import http from 'node:http';
import { pipeline } from 'node:stream';
import { Readable } from 'node:stream';
import { recorder, request, listen, sleep, load, endlessSource } from './_harness.mjs';

const express = load('express');
const compression = load('compression');
let scenario;
const app = express();
app.use('/gz', compression({ threshold: 0 }));
const routes = express.Router();
routes.get('/pipe', (req, res) => {
  res.type('text');
  res.on('close', () => scenario.log('res:close'));
  endlessSource(Readable, scenario.log).pipe(res);
});
routes.get('/pipeline', (req, res) => {
  res.type('text');
  res.on('close', () => scenario.log('res:close'));
  pipeline(endlessSource(Readable, scenario.log), res, (err) => scenario.log(`pipeline-cb(${err?.code ?? 'ok'})`));
});
routes.get('/late-pipeline', async (req, res) => {
  res.on('close', () => scenario.log('res:close'));
  await sleep(150); // the client hung up at 30 ms: the response is already destroyed
  scenario.log(`pipeline-start(destroyed=${res.destroyed})`);
  const src = endlessSource(Readable, scenario.log);
  try {
    pipeline(src, res, (err) => scenario.log(`pipeline-cb(${err?.code ?? 'ok'})`));
  } catch (e) { scenario.log(`pipeline-threw(${e.code})`); }
  setTimeout(() => scenario.log(`100ms-later(src.destroyed=${src.destroyed})`), 100);
});
app.use('/', routes);
app.use('/gz', routes);

const port = await listen(http.createServer(app));
for (const path of ['/pipe', '/pipeline', '/gz/pipe', '/gz/pipeline']) {
  scenario = recorder(`${path} hang-up on first data`);
  const got = await request(port, path, { hangUp: 'first-data', headers: 'Accept-Encoding: gzip\r\n' });
  scenario.log(`client:closed(${/content-encoding: gzip/i.test(got.raw) ? 'gzip' : 'identity'})`);
  await sleep(300);
  scenario.dump();
}
scenario = recorder('/late-pipeline (hang-up before)');
await request(port, '/late-pipeline', { hangUp: 30 });
scenario.log('client:closed');
await sleep(300);
scenario.dump();
process.exit(0);
