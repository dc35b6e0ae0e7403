// The load side: warms the server up, then fetches one large body, discarding the bytes, and
// prints the wall time from request to last byte, and the server's and its own CPU time over it.
// Usage: client.ts <port> <serverPid> <chunks> <chunkBytes> <warmupMs>
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds } from '../lib/cpu.ts';

const [port, serverPid, chunks, chunkBytes, warmupMs] = process.argv.slice(2).map(Number) as [number, number, number, number, number];
const WARMUP_BYTES_PER_REQUEST = 64 * 1024 * 1024;
// The server's last bits of work (closing the body and the scope) land just after the last byte.
const SETTLE_MS = 50;

/** GETs `?chunks=count` and resolves with the number of body bytes received. */
function fetchBody(count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/?chunks=${count}`, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (data: Buffer) => (bytes += data.length));
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const warmupCount = Math.max(1, Math.floor(WARMUP_BYTES_PER_REQUEST / chunkBytes));
for (const until = performance.now() + warmupMs; performance.now() < until; ) await fetchBody(warmupCount);

const cpuBefore = cpuSeconds(serverPid);
const clientCpuBefore = process.cpuUsage();
const started = performance.now();
const bytes = await fetchBody(chunks);
const seconds = (performance.now() - started) / 1000;
const clientCpu = process.cpuUsage(clientCpuBefore);
const clientCpuSeconds = (clientCpu.user + clientCpu.system) / 1e6;
await sleep(SETTLE_MS);
const serverCpuSeconds = cpuSeconds(serverPid) - cpuBefore;

if (bytes !== chunks * chunkBytes) throw new Error(`expected ${chunks * chunkBytes} bytes, received ${bytes}`);
console.log(JSON.stringify({ bytes, seconds, serverCpuSeconds, clientCpuSeconds }));
