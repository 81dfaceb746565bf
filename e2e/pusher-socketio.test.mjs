// The Pusher features on the socket.io side (PRODUCT.md §15, last bullet): cache channels
// and subscription_count for socket.io clients and the JS client (under pusher-js's event
// names), and their webhooks (cache_miss, subscription_count), against the real binary.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import { startServer } from './helpers/server.mjs';
import { Clients, io, withTimeout } from './helpers/clients.mjs';
import { signJwt, claims } from './helpers/jwt.mjs';
import { APP, appEnv, sdk } from './helpers/pusher.mjs';
import { userClaims, join, record, subscribeOk, waitUntil, waitForMatch } from './helpers/channels.mjs';

const require = createRequire(import.meta.url);
const Jetsocket = require('../public/js/jetsocket.js');
const WAIT = 8000;

/** webhookReceiver collects the events of every webhook POST. */
async function webhookReceiver() {
  const events = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      try { events.push(...JSON.parse(body).events); } catch { /* counted as missing */ }
      res.end('ok');
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${srv.address().port}/hook`, events, close: () => srv.close() };
}

function once(target, event, ms = WAIT) {
  return withTimeout(new Promise((resolve) => {
    const fn = (data, meta) => { target.unbind(event, fn); resolve([data, meta]); };
    target.bind(event, fn);
  }), ms, event);
}

describe('Pusher features on the socket.io side', { timeout: 60_000 }, () => {
  let srv;
  let hooks;
  const clients = new Clients();
  const js = [];
  function client(sub) {
    const c = new Jetsocket(APP.key, { host: srv.url, token: () => signJwt(claims(userClaims(sub))), io, retryMinMs: 100, retryMaxMs: 500 });
    js.push(c);
    return c;
  }

  before(async () => {
    hooks = await webhookReceiver();
    srv = await startServer(appEnv({ HISTORY_SIZE: '10', SUBSCRIPTION_COUNT: 'true', WEBHOOK_URL: hooks.url }));
  });
  after(async () => {
    for (const c of js) c.disconnect();
    clients.closeAll();
    await srv?.stop();
    hooks?.close();
  });

  test('a socket.io cache channel subscriber gets the last event after the ack, or jetsocket:cache_miss', async () => {
    const api = sdk(srv);
    await api.trigger('cache-io', 'price', { v: 1 });
    await api.trigger('cache-io', 'price', { v: 2 });
    const { socket } = await join(srv.url, clients, 'cache-io-1', {}, { transports: ['websocket'] });
    const prices = record(socket, 'price');
    const misses = record(socket, 'jetsocket:cache_miss');
    await subscribeOk(socket, 'cache-io');
    await waitForMatch(prices, () => true, WAIT, 'the last event');
    assert.deepEqual(prices[0], { channel: 'cache-io', data: { v: 2 } });
    await subscribeOk(socket, 'presence-cache-io-empty');
    await waitForMatch(misses, () => true, WAIT, 'jetsocket:cache_miss');
    assert.deepEqual(misses, [{ channel: 'presence-cache-io-empty' }]);
    assert.equal(prices.length, 1);
    await waitUntil(() => hooks.events.some((e) => e.name === 'cache_miss' && e.channel === 'presence-cache-io-empty'), WAIT,
      () => `the cache_miss webhook: ${JSON.stringify(hooks.events)}`);
  });

  test('the JS client fires pusher:cache_miss and the last event on the channel, as pusher-js does', async () => {
    await sdk(srv).trigger('cache-js', 'state', 'ready');
    const c = client('cache-js-1');
    const ch = c.subscribe('cache-js');
    const [data, meta] = await once(ch, 'state');
    assert.equal(data, 'ready');
    assert.equal(meta.channel, 'cache-js');
    const empty = c.subscribe('cache-js-empty');
    const [miss] = await once(empty, 'pusher:cache_miss');
    assert.deepEqual(miss, {});
  });

  test('the JS client fires pusher:subscription_count; the subscription_count webhook carries the count', async () => {
    const a = client('count-1');
    const ch = a.subscribe('counted-js');
    const [first] = await once(ch, 'pusher:subscription_count');
    assert.deepEqual(first, { subscription_count: 1 });
    assert.equal(ch.subscriptionCount, 1);
    const next = once(ch, 'pusher:subscription_count');
    client('count-2').subscribe('counted-js');
    assert.deepEqual((await next)[0], { subscription_count: 2 });
    assert.equal(ch.subscriptionCount, 2);
    await waitUntil(() => hooks.events.some((e) => e.name === 'subscription_count' && e.channel === 'counted-js' && e.subscription_count === 2), WAIT,
      () => `the subscription_count webhook: ${JSON.stringify(hooks.events)}`);
    // A count is a notice, not a publication: a cache channel's last event stays the app's.
    await sdk(srv).trigger('cache-counted', 'v', 1);
    const b = client('count-3');
    const cc = b.subscribe('cache-counted');
    await once(cc, 'pusher:subscription_count');
    const d = client('count-4');
    const [v] = await once(d.subscribe('cache-counted'), 'v');
    assert.equal(v, 1);
  });
});
