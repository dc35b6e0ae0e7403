import { runConformance, runGuardedConformance } from '@closeguard/conformance';
import { koaGuardedHost, koaGuardedHttp2Host, koaHost, koaHttp2Host } from './hosts/koa.ts';

// gateway(app) from @closeguard/koa mounted at the root of a Koa 3 app, on node:http and on
// node:http2 (h2c, koa.callback() on http2.createServer).
runConformance([koaHost, koaHttp2Host]);
// The standard routes in Koa's idiom behind connectionClosing(guard), on PostgreSQL, over both.
runGuardedConformance([koaGuardedHost, koaGuardedHttp2Host]);
