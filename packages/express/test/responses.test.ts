import { request as httpRequest } from 'node:http';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectionClosingMiddleware, signals, type RequestFinishedMessage } from '@closeguard/core';
import { connectionClosing } from '@closeguard/express';
import { eventually, quiet, useHarness } from './harness.ts';

// Responses that Express ends outside the layer router traced — res.format, res.sendFile,
// res.render and res.download hand their errors to `req.next`, finalhandler answers (or cuts)
// them, a callback calls next(err) later — behave exactly as in the same app without closeguard,
// and each request settles once its response is over and its chain has nothing left to run.
const harness = useHarness();

const finished: RequestFinishedMessage[] = [];
const onFinished = (message: RequestFinishedMessage): void => void finished.push(message);
signals.requestFinished.subscribe(onFinished);
afterAll(() => void signals.requestFinished.unsubscribe(onFinished));

/** Longer than eventually() waits: a request that only settles when abortGrace runs out fails. */
const LONG_GRACE_MS = 10_000;
const THIS_FILE = fileURLToPath(import.meta.url);

/**
 * A scenario builds its routes on an app. `work(req)` is the route's database work: nothing in the
 * bare app, a lease and a query in the guarded one. Handlers are synchronous and answer from the
 * work's callback, outside the layer router traced.
 */
type Scenario = (app: Express, work: (req: Request) => Promise<unknown>) => void;

/** What a client and the app's error handlers saw. */
interface Seen {
  status: number | 'cut';
  type: string | undefined;
  body: string;
  errors: string[];
}

async function serveAndAsk(app: Express, errors: string[], path: string, headers: Record<string, string>): Promise<Seen> {
  const url = await harness.listen(app);
  const answer = await new Promise<Omit<Seen, 'errors'>>((resolve) => {
    const request = httpRequest(`${url}${path}`, { headers: { connection: 'close', ...headers } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, type: response.headers['content-type'], body }));
      response.on('error', () => resolve({ status: 'cut', type: undefined, body: '' }));
    });
    request.on('error', () => resolve({ status: 'cut', type: undefined, body: '' }));
    request.end();
  });
  return { ...answer, errors };
}

/** An app with production error pages (no stack traces to compare), built by `scenario`, and an error handler that records what it saw. */
function appWith(scenario: Scenario, work: (req: Request) => Promise<unknown>, guard?: ConnectionClosingMiddleware): { app: Express; errors: string[] } {
  const app = express();
  app.set('env', 'production');
  if (guard) app.use(connectionClosing(guard, { logger: quiet }));
  scenario(app, work);
  const errors: string[] = [];
  const recordError: ErrorRequestHandler = (error: Error & { status?: number }, _req, _res, next) => {
    errors.push(`${error.status ?? ''} ${error.message}`);
    next(error);
  };
  app.use(recordError);
  return { app, errors };
}

/** Runs `scenario` bare and guarded, and expects the same answer, the same errors, and the guarded request settled once with its connection released. */
async function expectUnchanged(path: string, scenario: Scenario, headers: Record<string, string> = {}): Promise<Seen> {
  const bare = appWith(scenario, () => Promise.resolve());
  const expected = await serveAndAsk(bare.app, bare.errors, path, headers);

  const guard = new ConnectionClosingMiddleware({ pool: harness.pool(1), abortGrace: LONG_GRACE_MS });
  const guarded = appWith(scenario, async (req) => (await req.db()).query('SELECT 1'), guard);
  expect(await serveAndAsk(guarded.app, guarded.errors, path, headers)).toEqual(expected);
  await eventually(() => {
    expect(guard.stats()).toMatchObject({ inFlight: 0, leased: 1, released: 1, destroyed: { unusable: 0, obsolete: 0, abandoned: 0 } });
    expect(finished.filter((message) => message.url === path)).toHaveLength(1);
  });
  return expected;
}

/** A synchronous handler that runs `answer` once the work is done, and hands the work's failure to next(). */
function afterWork(work: (req: Request) => Promise<unknown>, answer: (req: Request, res: Response, next: NextFunction) => void): RequestHandler {
  return (req, res, next) => void work(req).then(() => answer(req, res, next), next);
}

const formats = (res: Response): Record<string, () => void> => ({ 'text/plain': () => void res.send('hey') });

describe('res.format()', () => {
  it('answers an acceptable type', async () => {
    const seen = await expectUnchanged('/format/ok', (app, work) => {
      app.get('/format/ok', afterWork(work, (_req, res) => void res.format(formats(res))));
    }, { accept: 'text/plain' });
    expect(seen).toMatchObject({ status: 200, body: 'hey' });
  });

  it('hands a 406 to req.next: finalhandler answers it', async () => {
    const seen = await expectUnchanged('/format/406', (app, work) => {
      app.get('/format/406', afterWork(work, (_req, res) => void res.format(formats(res))));
    }, { accept: 'image/png' });
    expect(seen).toMatchObject({ status: 406, errors: ['406 Not Acceptable'] });
  });

  it('hands a 406 to req.next: an error handler answers it', async () => {
    const seen = await expectUnchanged('/format/406-handled', (app, work) => {
      app.get('/format/406-handled', afterWork(work, (_req, res) => void res.format(formats(res))));
      app.use(((error: Error & { status: number; types: string[] }, _req, res, _next) => {
        res.status(error.status).send(`Supports: ${error.types.join(', ')}`);
      }) as ErrorRequestHandler);
    }, { accept: 'image/png' });
    expect(seen).toMatchObject({ status: 406, body: 'Supports: text/plain' });
  });

  it('runs .default, which passes the request on with next()', async () => {
    const seen = await expectUnchanged('/format/default', (app, work) => {
      app.get('/format/default', afterWork(work, (_req, res, next) => void res.format({ ...formats(res), default: () => next() })));
      app.get('/format/default', (_req, res) => void res.send('after'));
    }, { accept: 'image/png' });
    expect(seen).toMatchObject({ status: 200, body: 'after' });
  });

  it('runs .default, which fails with next(err) from a timer', async () => {
    const seen = await expectUnchanged('/format/default-error', (app, work) => {
      app.get('/format/default-error', afterWork(work, (_req, res, next) => {
        res.format({ default: () => void setTimeout(() => next(new Error('no format')), 5) });
      }));
    });
    expect(seen).toMatchObject({ status: 500, errors: [' no format'] });
  });
});

describe('res.sendFile() and res.download()', () => {
  it('sends a file', async () => {
    const seen = await expectUnchanged('/file/ok', (app, work) => {
      app.get('/file/ok', afterWork(work, (_req, res) => res.sendFile(THIS_FILE)));
    });
    expect(seen).toMatchObject({ status: 200, body: expect.stringContaining('res.sendFile') as string });
  });

  it('hands a missing file to req.next: finalhandler answers 404', async () => {
    const seen = await expectUnchanged('/file/missing', (app, work) => {
      app.get('/file/missing', afterWork(work, (_req, res) => res.sendFile(`${THIS_FILE}.missing`)));
    });
    expect(seen).toMatchObject({ status: 404, errors: [expect.stringMatching(/^404 ENOENT/) as string] });
  });

  it('passes a directory on with req.next()', async () => {
    const seen = await expectUnchanged('/file/dir', (app, work) => {
      app.get('/file/dir', afterWork(work, (_req, res) => res.sendFile(dirname(THIS_FILE))));
      app.get('/file/dir', (_req, res) => void res.send('not a file'));
    });
    expect(seen).toMatchObject({ status: 200, body: 'not a file' });
  });

  it("calls the callback with the error, which hands it to next() later", async () => {
    const seen = await expectUnchanged('/file/callback', (app, work) => {
      app.get('/file/callback', afterWork(work, (_req, res, next) => {
        res.sendFile(`${THIS_FILE}.missing`, (error) => void setTimeout(() => next(error), 5));
      }));
    });
    expect(seen).toMatchObject({ status: 404 });
  });

  it('hands a failed download to req.next', async () => {
    const seen = await expectUnchanged('/file/download', (app, work) => {
      app.get('/file/download', afterWork(work, (_req, res) => res.download(`${THIS_FILE}.missing`)));
    });
    expect(seen).toMatchObject({ status: 404 });
  });
});

describe('res.render()', () => {
  /** Views are this folder's .ts files, rendered by an engine that fails from a timer. */
  const views: Scenario = (app) => {
    app.engine('ts', (_path, _options, callback) => void setTimeout(() => callback(new Error('engine failed')), 5));
    app.set('view engine', 'ts');
    app.set('views', dirname(THIS_FILE));
  };

  it('hands a view it cannot find to req.next', async () => {
    const seen = await expectUnchanged('/render/missing', (app, work) => {
      views(app, work);
      app.get('/render/missing', afterWork(work, (_req, res) => res.render('missing')));
    });
    expect(seen).toMatchObject({ status: 500, errors: [expect.stringMatching(/Failed to lookup view/) as string] });
  });

  it("hands an engine's error to req.next", async () => {
    const seen = await expectUnchanged('/render/engine', (app, work) => {
      views(app, work);
      app.get('/render/engine', afterWork(work, (_req, res) => res.render('harness')));
    });
    expect(seen).toMatchObject({ status: 500, errors: [' engine failed'] });
  });

  it("gives an engine's error to the callback, which answers", async () => {
    const seen = await expectUnchanged('/render/callback', (app, work) => {
      views(app, work);
      app.get('/render/callback', afterWork(work, (_req, res) => {
        res.render('harness', (error: Error | null) => void res.status(502).send(error?.message ?? 'rendered'));
      }));
    });
    expect(seen).toMatchObject({ status: 502, body: 'engine failed' });
  });
});

describe('next(err) from a callback', () => {
  it('from a timer reaches the error handlers once', async () => {
    const seen = await expectUnchanged('/next/timer', (app, work) => {
      app.get('/next/timer', afterWork(work, (_req, _res, next) => void setTimeout(() => next(new Error('late')), 5)));
    });
    expect(seen).toMatchObject({ status: 500, errors: [' late'] });
  });

  it('through req.next from a timer reaches the error handlers once', async () => {
    const seen = await expectUnchanged('/next/req-next', (app, work) => {
      app.get('/next/req-next', afterWork(work, (req) => void setTimeout(() => req.next!(new Error('late')), 5)));
    });
    expect(seen).toMatchObject({ status: 500, errors: [' late'] });
  });

  it('after the headers went out: finalhandler cuts the response, and the request settles at once', async () => {
    const seen = await expectUnchanged('/next/after-headers', (app, work) => {
      app.get('/next/after-headers', afterWork(work, (_req, res, next) => {
        res.write('partial');
        setTimeout(() => next(new Error('mid-body')), 5);
      }));
    });
    expect(seen).toMatchObject({ status: 'cut', errors: [' mid-body'] });
  });

  it('from an async handler, after the headers went out, settles at once', async () => {
    const seen = await expectUnchanged('/next/async-after-headers', (app, work) => {
      app.get('/next/async-after-headers', async (req, res) => {
        await work(req);
        res.write('partial');
        throw new Error('mid-body');
      });
    });
    expect(seen).toMatchObject({ status: 'cut', errors: [' mid-body'] });
  });
});
