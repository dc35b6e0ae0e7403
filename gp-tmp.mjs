import { createPool } from 'generic-pool';
const pool = createPool({ create: () => Promise.reject(new Error('down')), destroy: () => Promise.resolve() }, { max: 1, acquireTimeoutMillis: 50 });
try { const r = await pool.acquire(); console.log('resolved', r); } catch (e) { console.log('rejected', e.message); }
process.exit(0);
