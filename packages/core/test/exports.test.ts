import { describe, expect, it } from 'vitest';
import * as core from '@closeguard/core';
import * as host from '@closeguard/core/host';

describe('@closeguard/core exports', () => {
  it('exposes exactly what applications use', () => {
    expect(Object.keys(core).sort()).toEqual(
      [
        'CloseguardError',
        'CloseguardTypeError',
        'ConnectionClosingMiddleware',
        'ContractError',
        'channelNames',
        'connection',
        'currentScope',
        'errorCatalog',
        'getErrorStatus',
        'isCloseguardError',
        'poolPolicy',
        'signals',
        'transaction',
        'validate',
      ].sort(),
    );
  });

  it('exposes what hosts and adapters use under @closeguard/core/host, and none of it at the root', () => {
    const names = Object.keys(host);
    expect(names.sort()).toEqual(
      ['DEFAULT_ABORT_GRACE_MS', 'GatewayReadable', 'HostRequest', 'closeReason', 'checkHostOptions', 'checkLogger', 'checkTransactionOption', 'createCheckouts', 'createScope', 'drive', 'enterGuard', 'leasesFor', 'poolCheckouts'].sort(),
    );
    for (const name of names) expect(core).not.toHaveProperty(name);
  });

  it('gives every error code a status and a fix', () => {
    for (const [code, entry] of Object.entries(core.errorCatalog)) {
      expect(code).toMatch(/^ERR_CLOSEGUARD_[A-Z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.fix.length).toBeGreaterThan(20);
    }
  });
});
