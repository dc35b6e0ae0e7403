// Reads a V8 .cpuprofile and sums its samples per function, self and inclusive, so that two
// variants can be compared in microseconds per request.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../lib/spawn.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  /** The node sampled at each tick, and the µs since the previous one. */
  samples?: number[];
  timeDeltas?: number[];
}

/**
 * Each node's samples and the µs they stand for: all of them, or only those of the profile's last
 * `lastUs` (the measured load, leaving out start-up and warm-up, whose compile time would otherwise
 * be charged to the requests).
 */
function hitsOf(profile: Profile, lastUs: number | undefined): { hits: Map<number, number>; usPerSample: number; totalUs: number } {
  const { samples, timeDeltas } = profile;
  if (lastUs === undefined || samples === undefined || timeDeltas === undefined) {
    const hits = new Map(profile.nodes.map((node) => [node.id, node.hitCount ?? 0]));
    const count = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
    const totalUs = profile.endTime - profile.startTime;
    return { hits, usPerSample: totalUs / Math.max(1, count), totalUs };
  }
  const hits = new Map<number, number>();
  const from = profile.endTime - lastUs;
  let at = profile.startTime;
  let count = 0;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i]!;
    if (at < from) continue;
    hits.set(samples[i]!, (hits.get(samples[i]!) ?? 0) + 1);
    count++;
  }
  const totalUs = profile.endTime - Math.max(from, profile.startTime);
  return { hits, usPerSample: totalUs / Math.max(1, count), totalUs };
}

/** Microseconds spent per function (`name file:line`), and in each group of files. */
export interface Costs {
  totalUs: number;
  self: Map<string, number>;
  inclusive: Map<string, number>;
  groups: Map<string, number>;
}

/** Where a frame's code lives, in a few words: our packages by file, the rest by library. */
function place(url: string): string {
  if (url === '') return 'native';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file:') ? fileURLToPath(url) : url;
  const library = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
  return library ?? relative(ROOT, path);
}

function groupOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : 'native';
  const where = place(url);
  if (where.startsWith('packages/')) return where.split('/').slice(0, 2).join('/');
  if (where.startsWith('node:')) return 'node internals';
  return where.startsWith('bench/') ? 'bench app' : where;
}

/** `name file:line`; tsx emits each module on one line, so our own frames go without the line. */
function keyOf({ callFrame }: ProfileNode): string {
  const line = callFrame.lineNumber > 0 ? `:${callFrame.lineNumber + 1}` : '';
  return `${callFrame.functionName || '(anonymous)'} ${place(callFrame.url)}${line}`;
}

/**
 * Sums a profile's samples: self time per frame and per group, inclusive time per frame; over the
 * profile's last `lastSeconds` only, when given.
 */
export function readCosts(file: string, lastSeconds?: number): Costs {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const { hits, usPerSample, totalUs } = hitsOf(profile, lastSeconds === undefined ? undefined : lastSeconds * 1e6);
  const costs: Costs = { totalUs, self: new Map(), inclusive: new Map(), groups: new Map() };
  const add = (map: Map<string, number>, key: string, us: number): void => void map.set(key, (map.get(key) ?? 0) + us);

  // Inclusive time: each frame counted once per stack, even when it recurses.
  const walk = (node: ProfileNode, onStack: Set<string>): number => {
    const key = keyOf(node);
    const selfUs = (hits.get(node.id) ?? 0) * usPerSample;
    add(costs.self, key, selfUs);
    add(costs.groups, groupOf(node.callFrame.url, node.callFrame.functionName), selfUs);
    const fresh = !onStack.has(key);
    if (fresh) onStack.add(key);
    let totalUs = selfUs;
    for (const child of node.children ?? []) totalUs += walk(byId.get(child)!, onStack);
    if (fresh) {
      onStack.delete(key);
      add(costs.inclusive, key, totalUs);
    }
    return totalUs;
  };
  walk(profile.nodes[0]!, new Set());
  return costs;
}

/** One profiled server's costs and the requests it served over the profile. */
export interface Profiled {
  costs: Costs;
  requests: number;
}

const TOP = 25;

function table(title: string, names: readonly string[], rows: Array<[string, number[]]>, limit: number): string {
  const last = names.length - 1;
  const head = `| ${title} | ${names.join(' | ')} | ${names[last]} − ${names[0]} |`;
  const lines = rows
    .sort((a, b) => Math.abs(b[1][last]! - b[1][0]!) - Math.abs(a[1][last]! - a[1][0]!))
    .slice(0, limit)
    .map(([key, values]) => `| ${key} | ${values.map((us) => us.toFixed(2)).join(' | ')} | ${(values[last]! - values[0]!).toFixed(2)} |`);
  return [head, `| --- |${' --- |'.repeat(names.length + 1)}`, ...lines].join('\n');
}

/** Rows of µs per request, one value per profile, for every key any profile has. */
function rowsOf(results: readonly Profiled[], pick: (costs: Costs) => Map<string, number>, keep: (key: string) => boolean): Array<[string, number[]]> {
  const keys = new Set(results.flatMap(({ costs }) => [...pick(costs).keys()]).filter(keep));
  return [...keys].map((key) => [key, results.map(({ costs, requests }) => (pick(costs).get(key) ?? 0) / requests)]);
}

/** µs of CPU per request by group of files, by closeguard function (self, inclusive) and by any function, last − first. */
export function costTables(names: readonly string[], results: readonly Profiled[]): string {
  const ours = (key: string): boolean => key.includes(' packages/');
  return [
    table('group (self time)', names, rowsOf(results, (costs) => costs.groups, () => true), TOP),
    table('closeguard function (self)', names, rowsOf(results, (costs) => costs.self, ours), TOP),
    table('closeguard function (inclusive)', names, rowsOf(results, (costs) => costs.inclusive, ours), TOP),
    table('any function (self)', names, rowsOf(results, (costs) => costs.self, () => true), TOP),
  ].join('\n\n');
}

/** Sums the costs of several profiles of one variant (rounds), and their requests. */
export function addProfiles(results: readonly Profiled[]): Profiled {
  const sum = (pick: (costs: Costs) => Map<string, number>): Map<string, number> => {
    const total = new Map<string, number>();
    for (const { costs } of results) for (const [key, us] of pick(costs)) total.set(key, (total.get(key) ?? 0) + us);
    return total;
  };
  return {
    costs: {
      totalUs: results.reduce((n, { costs }) => n + costs.totalUs, 0),
      self: sum((costs) => costs.self),
      inclusive: sum((costs) => costs.inclusive),
      groups: sum((costs) => costs.groups),
    },
    requests: results.reduce((n, { requests }) => n + requests, 0),
  };
}
