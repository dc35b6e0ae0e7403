import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { useHarness } from './harness.ts';

const harness = useHarness();

/** Timers created while `fn` runs synchronously. */
function timersCreatedBy(fn: () => void): number {
  let created = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Timeout') created++;
    },
  }).enable();
  try {
    fn();
  } finally {
    hook.disable();
  }
  return created;
}

describe("createPool()'s acquire", () => {
  it('hands over an idle client without arming the acquire timer', async () => {
    const { pool } = harness.pool(1);
    await pool.release(await pool.acquire()); // the client now sits idle
    let acquired: ReturnType<typeof pool.acquire> | undefined;
    expect(timersCreatedBy(() => {
      acquired = pool.acquire();
    })).toBe(0);
    const client = await acquired!;
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await pool.release(client);
  });

  it('keeps the timeout of an acquire that waits: ERR_CLOSEGUARD_ACQUIRE_TIMEOUT, and the pool serves on', async () => {
    const { pool } = harness.pool(1, { acquireTimeoutMillis: 200 });
    const held = await pool.acquire();
    let waiting: Promise<unknown> | undefined;
    expect(timersCreatedBy(() => {
      waiting = pool.acquire();
    })).toBe(1);
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_CLOSEGUARD_ACQUIRE_TIMEOUT', status: 503 });
    await pool.release(held);
    const next = await pool.acquire();
    expect(next).toBe(held);
    await pool.release(next);
  });
});
