import { runConformance, runGuardedConformance } from '@closeguard/conformance';
import { honoGuardedHost, honoGuardedHttp2Host, honoHost, honoHttp2Host } from './hosts/hono.ts';

// gateway(app) from @closeguard/hono mounted at the root of a Hono app on @hono/node-server, on
// node:http and on node:http2 (h2c, createAdaptorServer({ createServer: http2.createServer })).
runConformance([honoHost, honoHttp2Host]);
// The standard routes in Hono's idiom behind connectionClosing(guard), on PostgreSQL, over both.
runGuardedConformance([honoGuardedHost, honoGuardedHttp2Host]);
