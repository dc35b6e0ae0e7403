// One benchmark server: streams `?chunks=N` copies of one preallocated chunk, either through
// closeguard's host (requestListener → drive → GatewayReadable) or through a bare
// `pipeline(Readable.from(generator), res)`. Usage: server.ts <closeguard|pipeline> <sync|async> <chunkBytes>
import http from 'node:http';
import { Readable, pipeline } from 'node:stream';
import { requestListener } from '@closeguard/node';

const [variant, generator, chunkArg] = process.argv.slice(2);
const chunk = Buffer.alloc(Number(chunkArg), 'x');
const HEADERS = { 'content-type': 'application/octet-stream' };

function* syncChunks(count: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) yield chunk;
}

// eslint-disable-next-line @typescript-eslint/require-await -- an async generator that never waits
async function* asyncChunks(count: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < count; i++) yield chunk;
}

const chunks = generator === 'async' ? asyncChunks : syncChunks;

function countOf(url: string | undefined): number {
  return Number(new URLSearchParams(url?.slice(url.indexOf('?') + 1)).get('chunks') ?? 0);
}

function bare(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, HEADERS);
  pipeline(Readable.from(chunks(countOf(req.url))), res, (error) => {
    if (error && !res.destroyed) res.destroy();
  });
}

const guarded = requestListener((env, start) => {
  start(200, HEADERS);
  return chunks(countOf(env.url));
});

if (!(variant === 'closeguard' || variant === 'pipeline') || !(chunk.length > 0)) {
  throw new Error('usage: server.ts <closeguard|pipeline> <sync|async> <chunkBytes>');
}
const server = http.createServer(variant === 'closeguard' ? guarded : bare);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  console.log(`listening ${address.port}`);
});
process.once('SIGTERM', () => process.exit(0));
