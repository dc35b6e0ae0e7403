// DESIGN "Lifecycle facts" check: how far does Readable.from(iterable) read ahead of a stuck socket?
// The sink never calls back (a client that stopped reading); count the chunks pulled from the generator.
import { Readable, Writable } from 'node:stream';
import { sleep } from './_harness.mjs';

for (const opts of [undefined, { objectMode: false }, { objectMode: false, highWaterMark: 16 * 1024 }]) {
  let pulled = 0;
  const src = Readable.from((function* () { for (;;) { pulled++; yield Buffer.alloc(1024); } })(), opts);
  src.pipe(new Writable({ highWaterMark: 1, write() { /* never calls back */ } }));
  await sleep(50);
  console.log(`${JSON.stringify(opts ?? 'default').padEnd(44)} objectMode=${src.readableObjectMode} highWaterMark=${src.readableHighWaterMark} pulled=${pulled}`);
  src.destroy();
}
