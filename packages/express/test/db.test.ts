import express, { type NextFunction, type Request, type Response } from 'express';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connectionClosing } from '@closeguard/express';
import { quiet, useHarness } from './harness.ts';

// req.db() is set on each request connectionClosing() lets in (as express-session sets
// req.session): nothing is added to Express's prototypes. These pin what users see of that.
const harness = useHarness();

/** An error handler that answers with the error's code, so the client can tell which error it was. */
function answerCode(error: Error & { code?: string }, _req: Request, res: Response, _next: NextFunction): void {
  res.status(500).type('text/plain').send(error.code ?? error.message);
}

async function selectOne(req: Request): Promise<number> {
  const client = await req.db<pg.Client>();
  return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
}

describe('req.db()', () => {
  it('reaches the request’s connection from a sub-app and a router mounted after connectionClosing(), and adds nothing to Express’s prototypes', async () => {
    const app = express();
    app.use(connectionClosing({ pool: harness.pool(1), logger: quiet }));
    const answer = async (req: Request, res: Response): Promise<void> => {
      res.json({ one: await selectOne(req), own: Object.hasOwn(req, 'db'), prototypes: 'db' in express.request || 'db' in app.request || 'db' in sub.request });
    };
    const sub = express();
    sub.get('/one', answer);
    const router = express.Router();
    router.get('/one', answer);
    app.use('/sub', sub);
    app.use('/router', router);
    const url = await harness.listen(app);

    for (const path of ['/sub/one', '/router/one', '/sub/one']) {
      const response = await fetch(url + path);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ one: 1, own: true, prototypes: false });
    }
  });

  it('is not there on a request connectionClosing() did not let in, and the server keeps serving', async () => {
    const app = express();
    app.get('/before', async (req, res) => {
      res.json(await selectOne(req)); // registered before connectionClosing(): not admitted
    });
    app.use(connectionClosing({ pool: harness.pool(1), logger: quiet }));
    app.get('/after', async (req, res) => {
      res.json(await selectOne(req));
    });
    app.use(answerCode);
    const url = await harness.listen(app);

    const warmed = await fetch(`${url}/after`);
    expect(await warmed.json()).toBe(1);
    const refused = await fetch(`${url}/before`);
    expect(refused.status).toBe(500);
    expect(await refused.text()).toBe('req.db is not a function');
    const served = await fetch(`${url}/after`);
    expect(await served.json()).toBe(1);
  });

  it('is closeguard’s even where the app’s request prototype defines a db of its own', async () => {
    const app = express();
    const theirs = (): string => 'theirs';
    Object.defineProperty(app.request, 'db', { value: theirs, writable: true, configurable: true });
    app.use(connectionClosing({ pool: harness.pool(1), logger: quiet }));
    app.get('/one', async (req, res) => {
      res.json(await selectOne(req));
    });
    const url = await harness.listen(app);

    const response = await fetch(`${url}/one`);
    expect(response.status).toBe(200);
    expect(await response.json()).toBe(1);
  });
});
