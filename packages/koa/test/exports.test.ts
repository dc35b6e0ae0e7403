import { describe, expect, it } from 'vitest';
import * as koa from '@closeguard/koa';

describe('@closeguard/koa exports', () => {
  it('exposes exactly the public names', () => {
    expect(Object.keys(koa).sort()).toEqual(['connectionClosing', 'gateway', 'transaction']);
  });
});
