import { describe, expect, it } from 'vitest';
import * as hono from '@closeguard/hono';

describe('@closeguard/hono exports', () => {
  it('exposes exactly the public names', () => {
    expect(Object.keys(hono).sort()).toEqual(['connectionClosing', 'gateway', 'transaction']);
  });
});
