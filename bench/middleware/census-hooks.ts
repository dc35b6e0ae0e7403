// Loaded into a benchmark server with `--import` by census.ts: counts what the server creates —
// async resources by type (promises, timers, ticks, immediates, write requests…), listeners added
// by event name, diagnostics_channel messages published by channel — from SIGUSR2 (the start of
// the measured load) until the process exits, then writes them as JSON to CENSUS_OUT.
// Counting costs (async_hooks slow promises down): read the counts, never the timings, of such a run.
import { createHook } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';

const out = process.env.CENSUS_OUT;
if (out === undefined) throw new Error('census-hooks.ts needs CENSUS_OUT, the file to write the counts to');

let counting = false;
const resources = new Map<string, number>();
const listeners = new Map<string, number>();
const published = new Map<string, number>();
const add = (map: Map<string, number>, key: string): void => void map.set(key, (map.get(key) ?? 0) + 1);

// CENSUS_STACKS=Timeout,Immediate…: those resources are also counted by where they were created
// (the first frame outside node's own code), as `Timeout @ file:line`.
const traced = new Set(process.env.CENSUS_STACKS?.split(',') ?? []);
const Trace = Error as ErrorConstructor & { stackTraceLimit: number };

function creator(): string {
  const limit = Trace.stackTraceLimit;
  Trace.stackTraceLimit = 30;
  const frames = (new Error().stack ?? '').split('\n').slice(1).map((line) => line.trim());
  Trace.stackTraceLimit = limit;
  const outside = frames.find((frame) => !frame.includes('node:') && !frame.includes('census-hooks'));
  return outside?.replace(/^at /, '').replace(/file:\/\/[^ )]*\/node_modules\//, '').replace(/file:\/\/[^ )]*\/(packages|bench)\//, '$1/') ?? 'node';
}

createHook({
  init(_id, type) {
    if (!counting) return;
    add(resources, type);
    if (traced.has(type)) add(resources, `${type} @ ${creator()}`);
  },
}).enable();

// Every way a listener is added goes through one of these.
for (const method of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener'] as const) {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the emitter below
  const original = EventEmitter.prototype[method] as (this: EventEmitter, name: string | symbol, listener: (...args: unknown[]) => void) => EventEmitter;
  EventEmitter.prototype[method] = function counted(this: EventEmitter, name: string | symbol, listener: (...args: unknown[]) => void) {
    if (counting) add(listeners, `${this.constructor.name}.${String(name)}${method.includes('nce') ? ' (once)' : ''}`);
    return original.call(this, name, listener);
  };
}

// A channel with subscribers publishes through its own prototype (ActiveChannel, shared by all of
// them): count there, by channel name, without subscribing to anything (a subscriber would change
// what a framework does, e.g. router's tracing).
const probe = diagnosticsChannel.channel('closeguard:census:probe');
const keep = (): void => undefined;
probe.subscribe(keep);
const active = Object.getPrototypeOf(probe) as { publish(this: { name: string | symbol }, message: unknown): void };
probe.unsubscribe(keep);
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with the channel below
const publish = active.publish;
active.publish = function counted(this: { name: string | symbol }, message: unknown) {
  if (counting) add(published, String(this.name));
  publish.call(this, message);
};

process.on('SIGUSR2', () => {
  counting = true;
  resources.clear();
  listeners.clear();
  published.clear();
});
process.on('exit', () => {
  const sorted = (map: Map<string, number>) => Object.fromEntries([...map].sort((a, b) => b[1] - a[1]));
  writeFileSync(out, JSON.stringify({ resources: sorted(resources), listeners: sorted(listeners), published: sorted(published) }));
});
