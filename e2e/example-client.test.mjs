// The Node example client (example-client/index.mjs) against the real binary.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, freePort, repoRoot } from './helpers/server.mjs';

const clientDir = join(repoRoot, 'example-client');
const RUN_TIMEOUT_MS = 30_000;

/**
 * run starts the client with `args` and resolves {code, signal, stdout, stderr} when it exits.
 * `onStdout(text, child)` sees the output so far (to send a signal at the right moment).
 * The child is killed after RUN_TIMEOUT_MS.
 */
function run(args, { env = {}, onStdout } = {}) {
  return new Promise((resolve, reject) => {
    const cleanEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
    const child = spawn(process.execPath, [join(clientDir, 'index.mjs'), ...args], {
      cwd: clientDir, env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.stdout.on('data', (d) => { stdout += d; onStdout?.(stdout, child); });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const show = (r) => `exit ${r.code} ${r.signal || ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe('example client', { timeout: 180_000 }, () => {
  let server;

  before(async () => {
    if (!existsSync(join(clientDir, 'node_modules', 'socket.io-client'))) {
      execFileSync('npm', ['ci', '--prefix', clientDir, '--no-audit', '--no-fund'],
        { stdio: 'inherit', timeout: 120_000 });
    }
    server = await startServer();
  });

  after(async () => {
    await server?.stop();
  });

  test('--once logs in, connects, pings and exits 0', async () => {
    const r = await run(['--once', '--url', server.url, '--username', 'alice', '--password', 'alice123']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^logged in as .*user id 1\)/m, show(r));
    assert.match(r.stdout, /^connected: socket_id=\d+\.\d+ user_id=1 transport=(polling|websocket)$/m, show(r));
    assert.match(r.stdout, /^<- jetsocket:connection_established \{.*"socket_id":"\d+\.\d+"/m, show(r));
    assert.match(r.stdout, /^ping: round trip [\d.]+ ms, answer \{.*"pong":true/m, show(r));
    assert.equal(r.stderr, '', show(r));
  });

  test('takes its settings from the environment, and --websocket', async () => {
    const r = await run(['--once', '--websocket'], {
      env: { JETSOCKET_URL: server.url, JETSOCKET_USERNAME: 'carol', JETSOCKET_PASSWORD: 'carol123' },
    });
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^connected: socket_id=\d+\.\d+ user_id=3 transport=websocket$/m, show(r));
  });

  test('a wrong password exits non-zero with a clear message', async () => {
    const r = await run(['--once', '--url', server.url, '--username', 'alice', '--password', 'wrong']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /login refused \(401\)/, show(r));
    assert.doesNotMatch(r.stdout, /connected:/, show(r));
  });

  test('missing credentials is a usage error (exit 2)', async () => {
    const r = await run(['--once', '--url', server.url]);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /username and a password are required/, show(r));
  });

  test('an unreachable server exits non-zero', async () => {
    const port = await freePort(); // nothing listens there
    const r = await run(['--once', '--url', `http://127.0.0.1:${port}`, '--username', 'a', '--password', 'b']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /cannot reach .*ECONNREFUSED/, show(r));
  });

  test('--subscribe joins channels through the JS client and reports refusals', async () => {
    let sent = false;
    const r = await run(['--url', server.url, '--username', 'bob', '--password', 'bob123',
      '--subscribe', 'presence-ex', '--subscribe', 'private-group-ops'], {
      onStdout: (out, child) => {
        if (!sent && out.includes('-- subscribed to presence-ex') && out.includes('-- subscribe private-group-ops refused')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.ok(sent, `never subscribed\n${show(r)}`);
    assert.match(r.stdout, /^-- subscribe private-group-ops refused: 403 forbidden$/m, show(r));
    assert.equal(r.code, 0, show(r));
  });

  test('without --once it keeps listening and exits 0 on Ctrl-C (SIGINT)', async () => {
    let sent = false;
    const r = await run(['--url', server.url, '--username', 'bob', '--password', 'bob123'], {
      onStdout: (out, child) => {
        if (!sent && out.includes('-- listening for events')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.ok(sent, `never reached the listening state\n${show(r)}`);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /-- closing/, show(r));
  });
});
