// The demo page (public/) in a real headless Chromium against the real binary:
// log in, connect over socket.io-client 4.x, show the socket id and user; a wrong password
// and a refused token show errors and leave no connection; the chat uses every channel
// type between two browsers, with backend messages from the official pusher SDK.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './helpers/server.mjs';
import { MASTER_KEY_B64, appEnv, sdk } from './helpers/pusher.mjs';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 15_000;
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`;

describe('browser demo page', { skip, timeout: 120_000 }, () => {
  let server;
  let browser;
  const shotDir = mkdtempSync(join(tmpdir(), 'jetsocket-browser-'));

  before(async () => {
    server = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 }));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    try { await browser?.close(); } finally { await server?.stop(); }
  });

  // openPage gives a fresh context (own sessionStorage) and records what the page did.
  async function openPage(t, { init } = {}) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    context.setDefaultTimeout(WAIT_MS);
    t.after(() => context.close());
    if (init) await context.addInitScript(init);
    const page = await context.newPage();
    const seen = { errors: [], socketRequests: [], console: [] };
    page.on('pageerror', (err) => seen.errors.push(String(err)));
    page.on('console', (msg) => seen.console.push(`${msg.type()}: ${msg.text()}`));
    page.on('request', (req) => {
      if (new URL(req.url()).pathname.startsWith('/socket.io/')) seen.socketRequests.push(req.url());
    });
    const res = await page.goto(server.url + '/', { waitUntil: 'load' });
    assert.equal(res.status(), 200, 'GET / should serve the demo page');
    return { page, seen };
  }

  const text = (page, sel) => page.locator(sel).textContent({ timeout: WAIT_MS });
  const storedSession = (page) => page.evaluate(() => sessionStorage.getItem('jetsocket.session'));

  // waitForText waits until `sel`'s text satisfies `want` (string or RegExp source);
  // on timeout it fails with what the page showed and logged.
  async function waitForText(page, seen, sel, want) {
    const isRe = want instanceof RegExp;
    try {
      await page.waitForFunction(([s, w, re]) => {
        const el = document.querySelector(s);
        const v = el ? el.textContent.trim() : '';
        return re ? new RegExp(w).test(v) : v === w;
      }, [sel, isRe ? want.source : want, isRe], { timeout: WAIT_MS });
    } catch (err) {
      const got = await page.locator(sel).textContent().catch(() => '?');
      const log = await page.locator('#log').innerText().catch(() => '?');
      assert.fail(`${sel}: wanted ${want}, got ${JSON.stringify(got)} after ${WAIT_MS} ms\n` +
        `page log:\n${log}\nconsole:\n${seen.console.join('\n')}\nserver output (tail):\n` +
        server.output().slice(-3000));
    }
  }

  async function logIn(page, username, password) {
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await page.locator('#login-button').click();
  }

  test('the page loads its own socket.io client and shows the login form', async (t) => {
    const { page, seen } = await openPage(t);
    assert.equal(await text(page, '#status'), 'disconnected');
    assert.ok(await page.locator('#login-form').isVisible(), 'login form visible');
    assert.ok(await page.locator('#session-panel').isHidden(), 'session panel hidden before login');
    assert.match(await text(page, '.hint'), /bob/);
    assert.equal(await page.evaluate(() => typeof window.io), 'function', 'socket.io client loaded');
    assert.equal(await page.evaluate(() => typeof window.Jetsocket), 'function', 'the Jetsocket client loaded');
    const js = await fetch(`${server.url}/js/jetsocket.js`);
    assert.equal(js.status, 200, 'the client is served at /js/jetsocket.js');
    assert.match(js.headers.get('content-type'), /javascript/);
    const vendor = await fetch(`${server.url}/vendor/socket.io.min.js`);
    assert.equal(vendor.status, 200);
    assert.match(await vendor.text(), /^\/\*!\s*\n \* Socket\.IO v4\.8\.1/, 'vendored client keeps its licence header');
    assert.deepEqual(seen.errors, []);
  });

  test('bob logs in, connects and sees his socket id and user id', async (t) => {
    const { page, seen } = await openPage(t);
    await logIn(page, 'bob', 'bob123');

    await waitForText(page, seen, '#status', 'connected');
    await waitForText(page, seen, '#socket-id', /^\d+\.\d+$/);
    await waitForText(page, seen, '#user', '2');
    assert.match(await text(page, '#transport'), /^(polling|websocket)$/);
    assert.ok(await page.locator('#login-panel').isHidden(), 'login form hidden once logged in');

    const stored = JSON.parse(await storedSession(page));
    assert.equal(typeof stored.token, 'string');
    assert.ok(stored.token.length > 20, 'token kept in sessionStorage');
    assert.equal(String(stored.user?.id), '2', 'login answer carries the user');

    // The log shows the connection_established event, and a ping comes back with a pong.
    await waitForText(page, seen, '#log', /jetsocket:connection_established/);
    await page.locator('#ping-button').click();
    await waitForText(page, seen, '#log', /pong in \d+ ms/);
    assert.match(await page.locator('#log').innerText(), /"pong":true/);

    const shot = join(shotDir, 'demo-connected.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);

    // Logging out disconnects and forgets the token.
    await page.locator('#logout-button').click();
    await waitForText(page, seen, '#status', 'disconnected');
    assert.ok(await page.locator('#login-form').isVisible(), 'login form back after logout');
    assert.equal(await storedSession(page), null, 'token cleared on logout');
    assert.deepEqual(seen.errors, []);
  });

  test('a reload keeps the session and reconnects', async (t) => {
    const { page, seen } = await openPage(t);
    await logIn(page, 'alice', 'alice123');
    await waitForText(page, seen, '#socket-id', /^\d+\.\d+$/);
    const first = await text(page, '#socket-id');
    await page.reload({ waitUntil: 'load' });
    await waitForText(page, seen, '#status', 'connected');
    await waitForText(page, seen, '#socket-id', /^\d+\.\d+$/);
    await waitForText(page, seen, '#user', '1');
    assert.notEqual(await text(page, '#socket-id'), first, 'a new connection gets a new socket id');
    assert.deepEqual(seen.errors, []);
  });

  test('a wrong password shows an error and opens no connection', async (t) => {
    const { page, seen } = await openPage(t);
    await logIn(page, 'bob', 'not-bobs-password');

    await page.locator('#login-error').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await text(page, '#login-error'), /wrong username or password/i);
    assert.equal(await text(page, '#status'), 'disconnected');
    assert.ok(await page.locator('#session-panel').isHidden());
    assert.equal(await storedSession(page), null, 'no token stored');
    assert.deepEqual(seen.socketRequests, [], 'no socket.io request after a refused login');

    const shot = join(shotDir, 'demo-wrong-password.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    assert.deepEqual(seen.errors, []);
  });

  test('a token the server refuses shows an error and the login form again', async (t) => {
    const { page, seen } = await openPage(t, {
      init: () => {
        if (!sessionStorage.getItem('planted')) {
          sessionStorage.setItem('planted', '1');
          sessionStorage.setItem('jetsocket.session', JSON.stringify({
            token: 'not.a.valid-token', expires_at: '2999-01-01T00:00:00Z', user: { id: '2', name: 'Bob' },
          }));
        }
      },
    });
    await waitForText(page, seen, '#status', /^error: /);
    assert.match(await text(page, '#status'), /401/);
    await page.locator('#login-form').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await text(page, '#login-error'), /refused/i);
    assert.equal(await storedSession(page), null, 'refused token cleared');
    assert.ok(seen.socketRequests.length >= 1, 'the page tried the handshake');
    assert.deepEqual(seen.errors, []);
  });

  // The chat panel: one room per channel type.
  const room = (page, channel) => `.room[data-channel="${channel}"]`;
  async function joinRoom(page, seen, channel, want = 'joined') {
    await page.locator(`${room(page, channel)} .room-toggle`).click();
    await waitForText(page, seen, `${room(page, channel)} .room-state`, want);
  }
  async function say(page, channel, message) {
    await page.locator(`${room(page, channel)} input`).fill(message);
    await page.locator(`${room(page, channel)} button[type=submit]`).click();
  }

  test('the chat: presence members and client events between two browsers, backend messages in the public and the encrypted room, refusals shown', async (t) => {
    const a = await openPage(t);
    const b = await openPage(t);
    await logIn(a.page, 'alice', 'alice123');
    await logIn(b.page, 'bob', 'bob123');
    for (const { page, seen } of [a, b]) {
      await waitForText(page, seen, '#status', 'connected');
      await page.locator('#chat-panel').waitFor({ state: 'visible', timeout: WAIT_MS });
    }

    // Presence: the member list from the ack, then member_added; client events both ways.
    await joinRoom(a.page, a.seen, 'presence-lobby');
    await waitForText(a.page, a.seen, `${room(a.page, 'presence-lobby')} .members`, 'Alice Admin (1)');
    await joinRoom(b.page, b.seen, 'presence-lobby');
    await waitForText(b.page, b.seen, `${room(b.page, 'presence-lobby')} .members`, 'Alice Admin (1)Bob Builder (2)');
    await waitForText(a.page, a.seen, `${room(a.page, 'presence-lobby')} .members`, 'Alice Admin (1)Bob Builder (2)');
    await say(b.page, 'presence-lobby', 'hello from bob <b>not bold</b>');
    await waitForText(a.page, a.seen, `${room(a.page, 'presence-lobby')} .messages`, /Bob Builderhello from bob <b>not bold<\/b>/);
    await waitForText(b.page, b.seen, `${room(b.page, 'presence-lobby')} .messages`, /mehello from bob/);
    assert.equal(await a.page.locator(`${room(a.page, 'presence-lobby')} .messages b`).count(), 0, 'a message is text, never markup');

    // Private (group staff): both are members.
    await joinRoom(a.page, a.seen, 'private-group-staff');
    await joinRoom(b.page, b.seen, 'private-group-staff');
    await say(a.page, 'private-group-staff', 'staff only');
    await waitForText(b.page, b.seen, `${room(b.page, 'private-group-staff')} .messages`, /user 1staff only/);

    // Public and encrypted rooms carry what the backend publishes with the pusher SDK.
    await joinRoom(a.page, a.seen, 'chat');
    await joinRoom(b.page, b.seen, 'chat');
    await joinRoom(a.page, a.seen, 'private-encrypted-group-staff');
    await joinRoom(b.page, b.seen, 'private-encrypted-group-staff', /^error 403: /);
    const pusher = sdk(server, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
    await pusher.trigger('chat', 'message', { text: 'from the backend' });
    await pusher.trigger('private-encrypted-group-staff', 'message', { text: 'secret news' });
    for (const { page, seen } of [a, b]) {
      await waitForText(page, seen, `${room(page, 'chat')} .messages`, /backendfrom the backend/);
    }
    await waitForText(a.page, a.seen, `${room(a.page, 'private-encrypted-group-staff')} .messages`, /secret news/);
    assert.equal(await b.page.locator(`${room(b.page, 'private-encrypted-group-staff')} .messages li`).count(), 0, 'no message for a refused subscriber');

    // Leaving the presence room removes bob from alice's list.
    await b.page.locator(`${room(b.page, 'presence-lobby')} .room-toggle`).click();
    await waitForText(a.page, a.seen, `${room(a.page, 'presence-lobby')} .members`, 'Alice Admin (1)');
    await waitForText(a.page, a.seen, `${room(a.page, 'presence-lobby')} .messages`, /Bob Builder left/);

    const shot = join(shotDir, 'demo-chat.png');
    await a.page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);

    // Logging out hides the chat; the next login starts with no room joined.
    await a.page.locator('#logout-button').click();
    assert.ok(await a.page.locator('#chat-panel').isHidden(), 'chat hidden after logout');
    assert.deepEqual(a.seen.errors, []);
    assert.deepEqual(b.seen.errors, []);
  });
});
