import { pgDriver, pgPoolDriver, runConformance, runGuardedConformance } from '@closeguard/conformance';
import { nodeGuardedHost, nodeGuardedHttp2Host, nodeHttp1Host, nodeHttp2Host } from './hosts/node.ts';

// requestListener(app) from @closeguard/node, on node:http and on node:http2 (h2c).
runConformance([nodeHttp1Host, nodeHttp2Host]);
// The middleware's PostgreSQL cases through guard.wrap(app) on node:http, on both pg pools:
// @closeguard/pg's createPool and a plain pg.Pool through fromPgPool.
runGuardedConformance([nodeGuardedHost], [pgDriver, pgPoolDriver]);
// …and on node:http2 (h2c), where a hang-up is a stream's reset or the whole session's.
runGuardedConformance([nodeGuardedHttp2Host]);
