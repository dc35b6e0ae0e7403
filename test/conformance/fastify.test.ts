import { runConformance, runGuardedConformance } from '@closeguard/conformance';
import { fastifyGuardedHost, fastifyGuardedHttp2Host, fastifyHost, fastifyHttp2Host } from './hosts/fastify.ts';

// gateway(app) mounted in Fastify 5, on node:http and on HTTP/2 (h2c, Fastify({ http2: true })),
// and Fastify routes behind connectionClosing, on both.
runConformance([fastifyHost, fastifyHttp2Host]);
runGuardedConformance([fastifyGuardedHost, fastifyGuardedHttp2Host]);
