// The demo page's pusher-js mode (/?client=pusher-js&key=<APP_KEY>) in headless Chromium
// against the real binary: bob logs in, the page connects with the vendored pusher-js over
// /app/{key}, joins the presence room through POST /pusher/auth with his Bearer token,
// sees alice (a socket.io tab) in the member list, and gets a backend trigger and alice's
// client event.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startServer } from './helpers/server.mjs';
import { APP, appEnv, sdk } from './helpers/pusher.mjs';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 15_000;
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`;

describe('demo page in pusher-js mode', { skip, timeout: 120_000 }, () => {
  let server;
  let browser;
  before(async () => {
    server = await startServer(appEnv());
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

  // openPage gives a fresh context (own sessionStorage) at path and records what the
  // page did: errors, console, and the requests to the Pusher endpoints.
  async function openPage(t, path) {
    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    t.after(() => context.close());
    const page = await context.newPage();
    const seen = { errors: [], console: [], auth: [], sockets: [] };
    page.on('pageerror', (err) => seen.errors.push(String(err)));
    page.on('console', (msg) => seen.console.push(`${msg.type()}: ${msg.text()}`));
    page.on('request', (req) => {
      const u = new URL(req.url());
      if (u.pathname === '/pusher/auth') seen.auth.push({ authorization: req.headers().authorization, body: req.postData() });
    });
    page.on('websocket', (ws) => seen.sockets.push(new URL(ws.url()).pathname));
    const res = await page.goto(server.url + path, { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    return { page, seen };
  }

  async function waitForText(page, seen, sel, want) {
    const isRe = want instanceof RegExp;
    try {
      await page.waitForFunction(([s, w, re]) => {
        const el = document.querySelector(s);
        const v = el ? el.textContent.trim() : '';
        return re ? new RegExp(w).test(v) : v === w;
      }, [sel, isRe ? want.source : want, isRe], { timeout: WAIT_MS });
    } catch {
      const got = await page.locator(sel).textContent().catch(() => '?');
      const log = await page.locator('#log').innerText().catch(() => '?');
      assert.fail(`${sel}: wanted ${want}, got ${JSON.stringify(got)}\npage log:\n${log}\nconsole:\n${seen.console.join('\n')}\n` +
        `server output (tail):\n${server.output().slice(-3000)}`);
    }
  }

  async function logIn(page, username, password) {
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await page.locator('#login-button').click();
  }

  const room = (channel) => `.room[data-channel="${channel}"]`;
  async function joinRoom(page, seen, channel) {
    await page.locator(`${room(channel)} .room-toggle`).click();
    await waitForText(page, seen, `${room(channel)} .room-state`, 'joined');
  }

  test('the vendored pusher-js keeps its licence header', async () => {
    const res = await fetch(`${server.url}/vendor/pusher-with-encryption.min.js`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^\/\*!\s*\n \* Pusher JavaScript Library v8\.6\.0[\s\S]*MIT licence/);
  });

  test('without the app key the page says what it needs and opens no connection', async (t) => {
    const b = await openPage(t, '/?client=pusher-js');
    await logIn(b.page, 'bob', 'bob123');
    await waitForText(b.page, b.seen, '#status', /^error: pusher-js mode needs \?client=pusher-js&key=/);
    assert.deepEqual(b.seen.sockets, []);
    assert.deepEqual(b.seen.errors, []);
  });

  test('bob on pusher-js joins the presence room with alice on socket.io and gets a trigger and her client event', async (t) => {
    const a = await openPage(t, '/');
    const b = await openPage(t, `/?client=pusher-js&key=${APP.key}`);
    await logIn(a.page, 'alice', 'alice123');
    await logIn(b.page, 'bob', 'bob123');
    await waitForText(b.page, b.seen, '#status', 'connected');
    await waitForText(b.page, b.seen, '#socket-id', /^\d+\.\d+$/);
    await waitForText(b.page, b.seen, '#transport', /^pusher-js 8\.6\.0/);
    assert.ok(b.seen.sockets.includes(`/app/${APP.key}`), `pusher-js connected to /app/{key}: ${b.seen.sockets}`);
    assert.ok(!b.seen.sockets.some((p) => p.startsWith('/socket.io/')), 'no socket.io connection in pusher-js mode');
    await waitForText(a.page, a.seen, '#status', 'connected');

    await joinRoom(a.page, a.seen, 'presence-lobby');
    await joinRoom(b.page, b.seen, 'presence-lobby');
    assert.equal(b.seen.auth.length, 1, 'one channel authorization');
    assert.match(b.seen.auth[0].authorization, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(b.seen.auth[0].body, /channel_name=presence-lobby/);
    await waitForText(b.page, b.seen, `${room('presence-lobby')} .members`, 'Alice Admin (1)Bob Builder (2)');
    await waitForText(a.page, a.seen, `${room('presence-lobby')} .members`, 'Alice Admin (1)Bob Builder (2)');

    await sdk(server).trigger('presence-lobby', 'message', { text: 'from the backend' });
    await waitForText(b.page, b.seen, `${room('presence-lobby')} .messages`, /backendfrom the backend/);

    await a.page.locator(`${room('presence-lobby')} input`).fill('hello pusher-js');
    await a.page.locator(`${room('presence-lobby')} button[type=submit]`).click();
    await waitForText(b.page, b.seen, `${room('presence-lobby')} .messages`, /Alice Adminhello pusher-js/);

    // bob leaves: alice's list drops him (pusher:unsubscribe reached the hub).
    await b.page.locator(`${room('presence-lobby')} .room-toggle`).click();
    await waitForText(a.page, a.seen, `${room('presence-lobby')} .members`, 'Alice Admin (1)');
    assert.deepEqual(b.seen.errors, []);
    assert.deepEqual(a.seen.errors, []);
  });
});
