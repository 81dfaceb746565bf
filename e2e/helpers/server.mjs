// Starts the real jetsocket binary on a free loopback port for end-to-end tests.
//
// The binary comes from JETSOCKET_BIN (the test script builds it once); without it the
// helper builds one into a temporary directory on first use.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// A fixed development secret so tests can mint their own tokens (valid and broken ones).
export const TEST_JWT_SECRET = 'e2e-test-secret-0123456789abcdef0123456789abcdef';

let builtBinary = process.env.JETSOCKET_BIN || '';

function binary() {
  if (builtBinary && existsSync(builtBinary)) return builtBinary;
  const dir = mkdtempSync(join(tmpdir(), 'jetsocket-bin-'));
  builtBinary = join(dir, 'jetsocket');
  execFileSync('go', ['build', '-o', builtBinary, '.'], { cwd: repoRoot, stdio: 'inherit' });
  return builtBinary;
}

/** freePort asks the kernel for an unused loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * startServer runs the binary with a clean environment (plus `env`) in an empty working
 * directory, so no .env file or inherited variable leaks in, and waits for /healthz.
 * `bin` runs another binary than jetsocket's (an example built on it).
 * Returns {url, port, output(), stop(), proc, exited}.
 */
export async function startServer(env = {}, { waitReady = true, bin } = {}) {
  const port = await freePort();
  const cwd = mkdtempSync(join(tmpdir(), 'jetsocket-run-'));
  const fullEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ADDR: `127.0.0.1:${port}`,
    APP_ENV: 'development',
    JWT_SECRET: TEST_JWT_SECRET,
    // The suites written before history (PRODUCT §14) assert whole payloads and acks,
    // which history adds {offset, epoch} and position to: they run with it off, and
    // history.test.mjs (and any suite that passes HISTORY_SIZE or CHANNEL_HISTORY) with
    // it on, as the server's default is.
    ...(env.HISTORY_SIZE === undefined && env.CHANNEL_HISTORY === undefined ? { HISTORY_SIZE: '0' } : {}),
    ...env,
  };
  for (const [k, v] of Object.entries(fullEnv)) if (v === undefined) delete fullEnv[k];

  const proc = spawn(bin || binary(), [], { cwd, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));

  const url = `http://127.0.0.1:${port}`;
  const server = {
    url,
    port,
    proc,
    exited,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const res = await exited;
      clearTimeout(timer);
      return res;
    },
  };
  if (!waitReady) return server;

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) {
      throw new Error(`jetsocket exited with ${proc.exitCode} before ready:\n${out}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return server;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`jetsocket not ready after 20s:\n${out}`);
    }
    await sleep(50);
  }
}

/**
 * runServerExpectingExit runs the binary with `env` and resolves {code, output} once it
 * exits by itself (used for start-up validation); kills it after `timeoutMs`.
 */
export async function runServerExpectingExit(env = {}, timeoutMs = 10_000) {
  const server = await startServer(env, { waitReady: false });
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await server.exited;
  clearTimeout(timer);
  return { code, signal, output: server.output() };
}

/** login posts JSON credentials and returns {status, body, headers}. */
export async function login(url, username, password) {
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}
