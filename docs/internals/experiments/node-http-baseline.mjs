// Q1/Q11 baseline on bare node:http: terminal events, late res.end() after a hang-up,
// req 'close' after a POST body is read, and a write loop that awaits 'drain' after a hang-up.
import http from 'node:http';
import { once } from 'node:events';
import { recorder, request, listen, sleep } from './_harness.mjs';

let scenario;
const server = http.createServer(async (req, res) => {
  const { log } = scenario;
  req.on('aborted', () => log('req:aborted'));
  req.on('close', () => log(`req:close(aborted=${req.aborted})`));
  res.on('finish', () => log('res:finish'));
  res.on('error', (e) => log(`res:error(${e.code})`));
  res.on('close', () => log(`res:close(writableFinished=${res.writableFinished})`));
  if (req.url === '/post') { for await (const _ of req); log('body:read'); await sleep(50); res.end('ok'); log('handler:end-called'); return; }
  if (req.url === '/ok') { await sleep(20); res.end('ok'); log('handler:end-called'); return; }
  if (req.url === '/late-end') {
    await sleep(150); // client hung up at 30 ms
    log(`before-end(destroyed=${res.destroyed},writableEnded=${res.writableEnded})`);
    try {
      res.end('late', (err) => log(`end-cb(${err?.code ?? 'no error'})`));
      log(`after-end(writableEnded=${res.writableEnded},writableFinished=${res.writableFinished})`);
    } catch (e) { log(`end-threw(${e.code})`); }
    return;
  }
  if (req.url === '/drain') {
    res.writeHead(200);
    const drained = async () => {
      for (;;) { if (!res.write(Buffer.alloc(64 * 1024))) await once(res, 'drain'); }
    };
    const r = await Promise.race([drained().then(() => 'loop-returned', (e) => `loop-threw(${e.code})`), sleep(1000).then(() => 'still-waiting-for-drain-after-1s')]);
    log(r);
  }
});
const port = await listen(server);
for (const [name, path, hangUp, wait] of [
  ['ok', '/ok', undefined, 50], ['POST body read, respond 50ms later', '/post', undefined, 50], ['late-end after hang-up', '/late-end', 30, 250], ['drain loop after hang-up', '/drain', 'first-data', 1200],
]) {
  scenario = recorder(name);
  const got = await request(port, path, { hangUp, ...(path === '/post' && { method: 'POST', body: '{"a":1}' }) });
  scenario.log(`client:closed(${got.head || 'nothing'})`);
  await sleep(wait);
  scenario.dump();
}

// keep-alive: two requests on one socket that stays open — does each res still emit 'close'?
scenario = recorder('keep-alive, 2 requests, socket open');
const net = await import('node:net');
const sock = net.connect(port, '127.0.0.1', () => sock.write('GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n'));
await sleep(150);
scenario.log(`socket-still-open(${!sock.destroyed})`);
sock.destroy();
scenario.dump();
server.close();
