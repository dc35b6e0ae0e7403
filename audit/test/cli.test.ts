import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseCommand } from '../cli.ts';
import { runCli } from './support.ts';

describe('parseCommand(argv)', () => {
  it('takes the defaults when given nothing', () => {
    expect(parseCommand([])).toEqual({ kind: 'run', options: DEFAULTS });
  });

  it('takes --framework repeated or as a comma list, in the audit order, each once', () => {
    const command = parseCommand(['--framework', 'drizzle,koa,express', '--framework=koa']);
    expect(command.kind === 'run' && command.options.frameworks).toEqual(['express', 'koa', 'drizzle']);
  });

  it('reads numbers, --serve and --report', () => {
    const command = parseCommand(['--requests', '30', '--concurrency=4', '--pool-max', '2', '--acquire-timeout', '50', '--serve', '--report', 'out']);
    expect(command).toEqual({
      kind: 'run',
      options: { ...DEFAULTS, requests: 30, concurrency: 4, poolMax: 2, acquireTimeoutMs: 50, serve: true, reportDir: 'out' },
    });
  });

  it.each([
    [['--requests', 'many'], /--requests takes a whole number ≥ 1; received 'many'/],
    [['--requests', '0'], /--requests takes a whole number ≥ 1/],
    [['--concurrency', '2.5'], /--concurrency takes a whole number/],
    [['--framework', 'rails'], /--framework takes express, fastify, koa, drizzle; received 'rails'/],
    [['--report', ''], /--report takes a directory/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /Unexpected argument 'extra'/],
  ])('refuses %j with a message', (argv, message) => {
    const command = parseCommand(argv);
    expect(command.kind).toBe('usage-error');
    expect(command.kind === 'usage-error' && command.message).toMatch(message);
  });
});

describe('the command line (a spawned process)', () => {
  it('--help lists every option with its default and exits 0', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    for (const option of ['--requests', '--concurrency', '--pool-max', '--acquire-timeout', '--framework', '--report', '--serve', '--help']) {
      expect(stdout).toContain(option);
    }
    expect(stdout).toContain(`(default ${DEFAULTS.requests})`);
    expect(stdout).toContain(`(default ${DEFAULTS.concurrency})`);
  }, 30_000);

  it('a bad option: a clear message on stderr, exit code 2, and no PostgreSQL started', async () => {
    const { code, stdout, stderr } = await runCli(['--framework', 'rails']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain("closeguard audit: --framework takes express, fastify, koa, drizzle; received 'rails'");
    expect(stderr).toContain('npm start -- --help');
    expect(stderr).not.toContain('PostgreSQL');
  }, 30_000);
});
