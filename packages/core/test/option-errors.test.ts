import { describe, expect, it } from 'vitest';
import { CloseguardTypeError, ConnectionClosingMiddleware, isCloseguardError, transaction, validate, type ConnectionClosingOptions } from '@closeguard/core';
import { checkHostOptions, checkLogger, createScope } from '@closeguard/core/host';

const quiet = { error: () => undefined };
const pool = { max: 2, acquire: () => Promise.resolve({}), release: () => undefined, destroy: () => undefined };
const guard = (options: unknown) => new ConnectionClosingMiddleware(options as ConnectionClosingOptions);

/** What `call` throws (it must throw). */
function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('a wrong option or argument in @closeguard/core', () => {
  it.each([
    ['ConnectionClosingMiddleware(null)', () => guard(null), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['pool and pools', () => guard({}), 'ERR_CLOSEGUARD_INVALID_OPTION', /exactly one of the options pool/],
    ['pools empty', () => guard({ pools: {} }), 'ERR_CLOSEGUARD_INVALID_OPTION', /pools must name/],
    ['pool', () => guard({ pool: {} }), 'ERR_CLOSEGUARD_INVALID_OPTION', /option pool must have acquire/],
    ['backpressure missing', () => guard({ pool: { ...pool, max: undefined } }), 'ERR_CLOSEGUARD_INVALID_OPTION', /backpressure is required/],
    ['backpressure', () => guard({ pool, backpressure: 0 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /backpressure must be an integer/],
    ['maxAge', () => guard({ pool, maxAge: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /maxAge/],
    ['healthCheck', () => guard({ pool, healthCheck: 'yes' }), 'ERR_CLOSEGUARD_INVALID_OPTION', /healthCheck/],
    ['onLeak', () => guard({ pool, onLeak: 'log' }), 'ERR_CLOSEGUARD_INVALID_OPTION', /onLeak/],
    ['transaction', () => guard({ pool, transaction: 'yes' }), 'ERR_CLOSEGUARD_INVALID_OPTION', /option transaction must be a boolean or \{ commitOn, commitAfterHangUp \}; received "yes"/],
    ['transaction.commitOn', () => guard({ pool, transaction: { commitOn: 200 } }), 'ERR_CLOSEGUARD_INVALID_OPTION', /transaction.commitOn must be a function/],
    ['transaction.commitAfterHangUp', () => guard({ pool, transaction: { commitAfterHangUp: 'yes' } }), 'ERR_CLOSEGUARD_INVALID_OPTION', /transaction.commitAfterHangUp must be a boolean/],
    ['transaction setting', () => guard({ pool, transaction: { commitOnStatus: () => true } }), 'ERR_CLOSEGUARD_INVALID_OPTION', /has no setting commitOnStatus/],
    ['transaction without a policy', () => guard({ pool, transaction: true }), 'ERR_CLOSEGUARD_INVALID_OPTION', /option transaction cannot be on: pool 'default' has no policy that begins, commits and rolls back/],
    ['transaction(setting)', () => transaction(5 as never), 'ERR_CLOSEGUARD_INVALID_OPTION', /transaction\(setting\) must be a boolean/],
    ['transaction()(app)', () => transaction(false)('app' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /transaction\(setting\)\(app\) takes a gateway app/],
    ['host options', () => checkHostOptions('requestListener', 5), 'ERR_CLOSEGUARD_INVALID_OPTION', /options object/],
    ['abortGrace', () => checkHostOptions('requestListener', { abortGrace: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /abortGrace/],
    ['logger', () => checkLogger('gateway', {}), 'ERR_CLOSEGUARD_INVALID_OPTION', /logger/],
    ['validate(app)', () => validate('app' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /validate\(app\)/],
    ['wrap(app)', () => guard({ pool }).wrap('app' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /wrap\(app\)/],
    ['close({ timeout })', () => guard({ pool }).close({ timeout: -1 }), 'ERR_CLOSEGUARD_INVALID_OPTION', /close\(\{ timeout \}\)/],
    ['scope.defer(cleanup)', () => createScope({ method: 'GET', url: '/', logger: quiet }).defer('x' as never), 'ERR_CLOSEGUARD_INVALID_ARGUMENT', /defer/],
  ])('%s throws a TypeError with its code and a message naming it', (_name, call, code, message) => {
    const error = thrown(call);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toBeInstanceOf(CloseguardTypeError);
    expect(error).toMatchObject({ code, name: 'CloseguardTypeError' });
    expect((error as Error).message).toMatch(message);
  });

  it('is not a request error: isCloseguardError() does not match it, and it has no status', () => {
    const error = thrown(() => guard({}));
    expect(isCloseguardError(error)).toBe(false);
    expect(error).not.toHaveProperty('status');
  });
});
