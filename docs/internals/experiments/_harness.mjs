// Shared helpers for the lifecycle experiments. Frameworks are resolved from the current
// directory (not from this file), so run the scripts from a scratch dir that has them installed:
//   cd /tmp/lifecycle-research && node /work/main/docs/internals/experiments/<script>.mjs
import { createRequire } from 'node:module';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const load = createRequire(`${process.cwd()}/`);
export { sleep };

/** Event recorder for one scenario: log('x') appends; dump() prints the order on one line. */
export function recorder(name) {
  const events = [];
  const t0 = performance.now();
  return {
    events,
    log: (e) => { events.push(e); if (process.env.TIMES) events[events.length - 1] += `@${Math.round(performance.now() - t0)}`; },
    dump: () => console.log(`${name.padEnd(34)} ${events.join(' > ')}`),
  };
}

/**
 * A raw HTTP/1.1 client. hangUp: undefined = read the whole response;
 * a number = socket.destroy() after that many ms; 'first-data' = destroy on the first chunk.
 * Resolves with what was received (head line) once the socket is closed; a response still open
 * after `giveUpMs` is cut by the client and reported with timedOut: true.
 */
export function request(port, path, { hangUp, headers = '', method = 'GET', body = '', giveUpMs = 1000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    let timedOut = false;
    const giveUp = setTimeout(() => { timedOut = true; s.destroy(); }, giveUpMs);
    s.on('connect', () => s.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : ''}${headers}\r\n${body}`));
    s.on('data', (c) => {
      data += c.toString('latin1');
      if (hangUp === 'first-data') s.destroy();
    });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(giveUp); resolve({ head: data.split('\r\n')[0], raw: data, timedOut }); });
    if (typeof hangUp === 'number') setTimeout(() => s.destroy(), hangUp);
  });
}

/** An endless byte source whose generator `finally` is logged: tells whether it was ended. */
export function endlessSource(Readable, log, chunk = 16 * 1024) {
  async function* rows() {
    try {
      for (;;) { await sleep(2); yield Buffer.alloc(chunk, 120); }
    } finally { log('source-finally'); }
  }
  const src = Readable.from(rows(), { objectMode: false });
  src.on('close', () => log('source-close'));
  return src;
}

export function listen(server) {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
}
