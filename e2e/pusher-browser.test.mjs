// pusher-js's browser build with encryption (dist/web/pusher-with-encryption.min.js, what
// `pusher-js/with-encryption` bundles) in headless Chromium against the Pusher endpoint:
// connecting, /pusher/auth with a Bearer header (same origin), a presence channel shared
// with a socket.io client, and the `pusher` SDK's encrypted trigger decrypted in the page.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { startServer } from './helpers/server.mjs';
import { Clients } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import { join, subscribeOk, record, waitForMatch, userClaims, MEMBER_ADDED } from './helpers/channels.mjs';
import { APP, MASTER_KEY_B64, appEnv, sdk } from './helpers/pusher.mjs';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`;
const PUSHER_WEB = createRequire(import.meta.url).resolve('pusher-js/dist/web/pusher-with-encryption.min.js');

describe('pusher-js in Chromium', { skip, timeout: 120_000 }, () => {
  let srv;
  let browser;
  const clients = new Clients();
  before(async () => {
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 }));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    clients.closeAll();
    try { await browser?.close(); } finally { await srv?.stop(); }
  });

  test('presence with a socket.io client, and an encrypted trigger decrypted in the page', async (t) => {
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${srv.url}/healthz`);
    await page.addScriptTag({ path: PUSHER_WEB });

    const { socket: io } = await join(srv.url, clients, 'sio-b', {}, { transports: ['websocket'] });
    const added = record(io, MEMBER_ADDED);
    await subscribeOk(io, 'presence-browser');

    const token = mint(userClaims('chrome', { permissions: ['encrypted-channels'] }));
    const members = await page.evaluate(async ({ key, port, token: tok }) => {
      const p = new window.Pusher(key, {
        wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: '',
        disableStats: true,
        channelAuthorization: { endpoint: '/pusher/auth', transport: 'ajax', headers: { Authorization: `Bearer ${tok}` } },
      });
      window.p = p;
      window.got = [];
      const ch = p.subscribe('presence-browser');
      await new Promise((resolve, reject) => {
        ch.bind('pusher:subscription_succeeded', resolve);
        ch.bind('pusher:subscription_error', reject);
      });
      const enc = p.subscribe('private-encrypted-browser');
      enc.bind('secret', (d) => window.got.push(d));
      await new Promise((resolve, reject) => {
        enc.bind('pusher:subscription_succeeded', resolve);
        enc.bind('pusher:subscription_error', (e) => reject(new Error(JSON.stringify(e))));
      });
      const ids = [];
      ch.members.each((m) => ids.push(m.id));
      return ids.sort();
    }, { key: APP.key, port: srv.port, token });
    assert.deepEqual(members, ['chrome', 'sio-b']);
    await waitForMatch(added, (e) => e.user_id === 'chrome', 5000, 'socket.io sees the browser join');

    await sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 }).trigger('private-encrypted-browser', 'secret', { msg: 'for chrome' });
    await page.waitForFunction(() => window.got.length === 1, null, { timeout: 10_000 });
    assert.deepEqual(await page.evaluate(() => window.got[0]), { msg: 'for chrome' });
    await page.evaluate(() => window.p.disconnect());
    assert.deepEqual(errors, []);
  });
});
