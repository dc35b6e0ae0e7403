import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { backendsFor, databaseUrl } from '@closeguard/conformance';
import { listeningUrl, spawnExample } from '../shared/example-suite.ts';
import { start } from './server.ts';

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));

describe('examples/operations', () => {
  it('exports the guard’s figures to Prometheus', async () => {
    const running = await start(databaseUrl());
    try {
      for (let i = 0; i < 3; i++) expect((await fetch(`${running.url}/now`)).status).toBe(200);
      const text = await (await fetch(`${running.url}/metrics`)).text();
      expect(text).toMatch(/^closeguard_connections_leased_total 3$/m);
      await vi.waitFor(async () => {
        const again = await (await fetch(`${running.url}/metrics`)).text();
        expect(again).toMatch(/^closeguard_connections_released_total 3$/m);
        expect(again).toMatch(/^closeguard_pool_connections\{pool="default",state="borrowed"\} 0$/m);
      });
      expect(text).toMatch(/^closeguard_request_duration_seconds_count\{reason="complete"\} 3$/m);
    } finally {
      await running.close();
    }
  });

  it('shuts down gracefully on SIGTERM: the request in flight is answered, the pool drained', async () => {
    const { child, exited } = spawnExample(SERVER);
    const url = await listeningUrl(child.stdout);
    // A request holding a connection when the signal arrives.
    const inFlight = fetch(`${url}/now`);
    await vi.waitFor(async () => expect(await backendsFor('closeguard-operations')).toBeGreaterThan(0));
    child.kill('SIGTERM');
    expect((await inFlight).status).toBe(200);
    expect(await exited).toBe(0);
    await vi.waitFor(async () => expect(await backendsFor('closeguard-operations')).toBe(0));
  });
});
