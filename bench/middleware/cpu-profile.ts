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

/** Sums a profile's samples: self time per frame and per group, inclusive time per frame. */
export function readCosts(file: string): Costs {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const samples = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const usPerSample = (profile.endTime - profile.startTime) / Math.max(1, samples);
  const costs: Costs = { totalUs: profile.endTime - profile.startTime, self: new Map(), inclusive: new Map(), groups: new Map() };
  const add = (map: Map<string, number>, key: string, us: number): void => void map.set(key, (map.get(key) ?? 0) + us);

  // Inclusive time: each frame counted once per stack, even when it recurses.
  const walk = (node: ProfileNode, onStack: Set<string>): number => {
    const key = keyOf(node);
    const selfUs = (node.hitCount ?? 0) * usPerSample;
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
