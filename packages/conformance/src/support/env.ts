import { createScope, type HostEnv } from '@closeguard/core/host';

/** A complete env on a fresh scope, for driving an app without a server. */
export function testEnv(url = '/'): HostEnv {
  const scope = createScope({ method: 'GET', url, logger: { error: () => undefined } });
  return {
    method: 'GET',
    url,
    path: url,
    query: '',
    headers: { host: 'localhost' },
    body: (async function* () {})(),
    signal: scope.signal,
    remoteAddress: undefined,
    scheme: 'http',
    httpVersion: '1.1',
    scope,
    host: { name: 'test', native: undefined },
  };
}
