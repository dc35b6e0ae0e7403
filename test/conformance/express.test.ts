import { pgDriver, pgPoolDriver, runConformance, runGuardedConformance } from '@closeguard/conformance';
import { expressHost } from './hosts/express.ts';

// gateway(app) from @closeguard/express, mounted at the root of an Express 5 app.
runConformance([expressHost]);
// The standard routes behind connectionClosing(guard), in Express's idiom, on PostgreSQL, on both
// pg pools (createPool, and pg.Pool through fromPgPool).
runGuardedConformance([expressHost], [pgDriver, pgPoolDriver]);
