// `npm run bench [-- name …]`: runs the named benchmarks (all of them by default) and prints
// markdown ready for docs/benchmarks.md. BENCH_NODE=/path/to/node picks the node under test.
import { describeMachine, nodeVersion } from './lib/machine.ts';
import { NODE } from './lib/spawn.ts';

const benchmarks: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  driver: () => import('./driver/run.ts'),
  middleware: () => import('./middleware/run.ts'),
  shutdown: () => import('./shutdown/run.ts'),
};

const names = process.argv.slice(2);
const unknown = names.filter((name) => !(name in benchmarks));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(benchmarks).join(', ')}`);
  process.exit(2);
}

console.log(`machine: ${describeMachine()}`);
console.log(`node under test: ${nodeVersion(NODE)} (${NODE})`);
for (const name of names.length > 0 ? names : Object.keys(benchmarks)) {
  console.log(`\n## ${name}\n`);
  await (await benchmarks[name]!()).run();
}
