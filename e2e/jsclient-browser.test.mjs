// The docs' secure messaging example for real, in headless Chromium: the app backend
// (example-client/secure-messaging, its own Go main) serves the page and authorizes the
// encrypted channel; the page logs in at Jetsocket, connects with the JS client served at
// /js/jetsocket.js, and two users chat through POST /send-encrypted-message. Only
// ciphertext crosses Jetsocket; the pages decrypt. A user the app does not allow is refused.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startServer, freePort, repoRoot, TEST_JWT_SECRET } from './helpers/server.mjs';
import { APP, MASTER_KEY_B64, appEnv } from './helpers/pusher.mjs';
import { assertNoLeak } from './helpers/assert.mjs';
import { sleep } from './helpers/clients.mjs';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 15_000;
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`;

describe('secure messaging example: two users in two browsers', { skip, timeout: 180_000 }, () => {
  let srv;
  let backend;
  let backendOut = '';
  let backendUrl;
  let browser;

  before(async () => {
    const port = await freePort();
    backendUrl = `http://127.0.0.1:${port}`;
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64, ALLOWED_ORIGINS: backendUrl }));
    const bin = join(mkdtempSync(join(tmpdir(), 'secure-messaging-')), 'secure-messaging');
    execFileSync('go', ['build', '-o', bin, './example-client/secure-messaging'], { cwd: repoRoot, stdio: 'inherit' });
    backend = spawn(bin, [], {
      env: {
        PATH: process.env.PATH, ADDR: `127.0.0.1:${port}`, JETSOCKET_URL: srv.url,
        APP_ID: APP.id, APP_KEY: APP.key, APP_SECRET: APP.secret,
        ENCRYPTION_MASTER_KEY: MASTER_KEY_B64, JWT_SECRET: TEST_JWT_SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    backend.stdout.on('data', (d) => { backendOut += d; });
    backend.stderr.on('data', (d) => { backendOut += d; });
    const deadline = Date.now() + 20_000;
    while (!(await fetch(backendUrl + '/').then((r) => r.ok, () => false))) {
      if (backend.exitCode !== null || Date.now() > deadline) throw new Error(`backend not ready:\n${backendOut}`);
      await sleep(50);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    try { await browser?.close(); } finally {
      backend?.kill('SIGTERM');
      await srv?.stop();
    }
  });

  // openAs opens the page in its own context, logs in and records what crossed the
  // socket.io connection (websocket frames and polling answers).
  async function openAs(t, username, password) {
    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    t.after(() => context.close());
    const page = await context.newPage();
    const seen = { errors: [], console: [], wire: [] };
    page.on('pageerror', (err) => seen.errors.push(String(err)));
    page.on('console', (msg) => seen.console.push(`${msg.type()}: ${msg.text()}`));
    page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => seen.wire.push(String(payload))));
    page.on('response', async (res) => {
      if (new URL(res.url()).pathname.startsWith('/socket.io/') && res.request().method() === 'GET') {
        seen.wire.push(await res.text().catch(() => ''));
      }
    });
    assert.equal((await page.goto(backendUrl + '/', { waitUntil: 'load' })).status(), 200);
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await page.locator('#login-button').click();
    return { page, seen };
  }

  async function waitForText({ page, seen }, sel, want) {
    try {
      await page.waitForFunction(([s, w]) => new RegExp(w).test(document.querySelector(s)?.textContent ?? ''), [sel, want.source], { timeout: WAIT_MS });
    } catch {
      const got = await page.locator(sel).textContent().catch(() => '?');
      assert.fail(`${sel}: wanted ${want}, got ${JSON.stringify(got)}\nconsole:\n${seen.console.join('\n')}\n` +
        `backend:\n${backendOut.slice(-2000)}\nserver:\n${srv.output().slice(-2000)}`);
    }
  }

  async function say(user, text) {
    await user.page.locator('#message').fill(text);
    await user.page.locator('#send-button').click();
  }

  test('alice and bob chat end to end encrypted; carol is refused by the app', async (t) => {
    const alice = await openAs(t, 'alice', 'alice123');
    const bob = await openAs(t, 'bob', 'bob123');
    for (const u of [alice, bob]) {
      await waitForText(u, '#status', /^connected$/);
      await waitForText(u, '#chat-state', /^joined$/);
    }

    const first = `hello bob ${randomBytes(6).toString('hex')}`;
    await say(alice, first);
    for (const u of [alice, bob]) await waitForText(u, '#messages', new RegExp(`Alice Admin${first}`));
    const reply = `hi alice <i>${randomBytes(6).toString('hex')}</i>`;
    await say(bob, reply);
    for (const u of [alice, bob]) await waitForText(u, '#messages', new RegExp(`Bob Builder${reply.replace(/[/]/g, '\\/')}`));
    assert.equal(await alice.page.locator('#messages i').count(), 0, 'a message is text, never markup');

    // The wire carried the event as ciphertext only.
    for (const u of [alice, bob]) {
      const wire = u.seen.wire.join('\n');
      assert.match(wire, /secure-message/, 'the event crossed the socket');
      assert.match(wire, /ciphertext/, 'as {nonce, ciphertext}');
      assert.ok(!wire.includes(first.split(' ').at(-1)) && !wire.includes(reply.slice(12, 24)), 'no plaintext on the wire');
    }

    const carol = await openAs(t, 'carol', 'carol123');
    await waitForText(carol, '#status', /^connected$/);
    await waitForText(carol, '#chat-state', /^error 403: /);
    assert.ok(await carol.page.locator('#send-form').isHidden());
    assert.equal(await carol.page.locator('#messages li').count(), 0);

    for (const u of [alice, bob, carol]) assert.deepEqual(u.seen.errors, []);
    assertNoLeak(srv.output() + backendOut, [first.split(' ').at(-1), reply.slice(12, 24)], 'plaintext of the secure chat');
  });
});
