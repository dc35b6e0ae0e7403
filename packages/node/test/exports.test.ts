import { describe, expect, it } from 'vitest';
import * as node from '@closeguard/node';

describe('@closeguard/node exports', () => {
  it('exposes exactly the public names', () => {
    expect(Object.keys(node).sort()).toEqual(['Exchange', 'checkGatewayOptions', 'createEnv', 'dbOf', 'finishedOf', 'headerRecord', 'isQueued', 'mountGateway', 'pipeBody', 'refusal', 'requestListener', 'serveGateway', 'useTransaction']);
  });
});

describe('requestListener(app, options)', () => {
  it('throws a TypeError naming what it received when app is not a function', () => {
    expect(() => node.requestListener('app' as never)).toThrow(/takes a gateway app function; received string/);
  });

  it.each(['abortGrace', 'bodyLimit', 'highWaterMark'])('throws a TypeError naming %s when it is negative', (name) => {
    expect(() => node.requestListener(() => [], { [name]: -1 })).toThrow(new RegExp(name));
  });

  it('throws a TypeError when the logger has no error()', () => {
    expect(() => node.requestListener(() => [], { logger: {} as never })).toThrow(/logger/);
  });
});
