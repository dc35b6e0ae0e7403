import { describe, expect, it } from 'vitest';
import * as core from '@closeguard/core';

describe('@closeguard/core exports', () => {
  it('exposes exactly the public names', () => {
    expect(Object.keys(core).sort()).toEqual(
      [
        'CloseguardError',
        'ConnectionClosingMiddleware',
        'ContractError',
        'DEFAULT_ABORT_GRACE_MS',
        'GatewayReadable',
        'HostRequest',
        'channelNames',
        'checkHostOptions',
        'checkLogger',
        'connection',
        'createScope',
        'currentScope',
        'drive',
        'errorCatalog',
        'getErrorStatus',
        'isCloseguardError',
        'leasesFor',
        'poolPolicy',
        'signals',
        'validate',
      ].sort(),
    );
  });

  it('gives every error code a status and a fix', () => {
    for (const [code, entry] of Object.entries(core.errorCatalog)) {
      expect(code).toMatch(/^ERR_CLOSEGUARD_[A-Z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.fix.length).toBeGreaterThan(20);
    }
  });
});
