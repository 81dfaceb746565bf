// socket.io 4.x connection state recovery (PRODUCT.md §14, docs/history.md "Clients"): raw
// socket.io-client 4.x, cut off by a TCP proxy of the test's own, comes back with its pid
// and last offset (the client library sends them) and gets its socket id, its channels
// and everything it missed on each of them, with socket.recovered === true.
//
// socket.io-client 2.x has no connection state recovery (its recovery is `since` on
// jetsocket:subscribe, covered by jsclient.test.mjs and the server's own suites): under
// CLIENT_MAJOR=2 this file is skipped.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io as io4 } from 'socket.io-client-4';
import { startServer } from './helpers/server.mjs';
import { CLIENT_MAJOR, sleep, withTimeout, refusalStatus } from './helpers/clients.mjs';
import { signJwt, claims, nowSeconds } from './helpers/jwt.mjs';
import { userClaims, waitUntil, emitAck } from './helpers/channels.mjs';
import { appEnv, sdk, ok } from './helpers/pusher.mjs';
import { startProxy } from './helpers/tcpproxy.mjs';

const skip = CLIENT_MAJOR !== 4 && 'connection state recovery is socket.io-client 4.x\'s (run with CLIENT_MAJOR=4); 2.x recovers with `since`, tested in jsclient.test.mjs';
const WAIT = 10_000;

/**
 * recoveringSocket is a raw socket.io-client 4.x socket through the proxy with the
 * library's own reconnection (which sends {pid, offset}); token() is asked on every
 * CONNECT. It records every channel event as {event, channel, n, offset}.
 */
function recoveringSocket(proxy, token) {
  const socket = io4(proxy.url, {
    forceNew: true,
    transports: ['websocket'],
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    auth: (cb) => cb({ token: token() }),
  });
  socket.got = [];
  socket.onAny((event, payload, offset) => {
    if (event === 'n') socket.got.push({ channel: payload.channel, n: payload.data.n, offset });
  });
  socket.connects = [];
  socket.on('connect', () => socket.connects.push({ id: socket.id, recovered: socket.recovered }));
  return socket;
}

const token = (sub) => () => signJwt(claims(userClaims(sub)));

async function subscribed(socket, channel) {
  const ack = await emitAck(socket, 'jetsocket:subscribe', { channel });
  assert.equal(ack?.ok, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
  return ack;
}

async function connected(socket, n = 1) {
  await waitUntil(() => socket.connects.length >= n, WAIT, () => `connect #${n}, have ${JSON.stringify(socket.connects)}`);
  return socket.connects[n - 1];
}

describe('socket.io 4.x connection state recovery', { skip, timeout: 120_000 }, () => {
  let srv;
  let pusher;
  const open = [];
  before(async () => {
    srv = await startServer(appEnv({ RECOVERY_WINDOW: '2m', HISTORY_SIZE: '100' }));
    pusher = sdk(srv);
  });
  after(async () => {
    for (const x of open) await x.close?.();
    await srv?.stop();
  });
  async function proxied() {
    const p = await startProxy(srv.url);
    open.push(p);
    return p;
  }
  const publish = async (channel, n) => ok(pusher.trigger(channel, 'n', { n }), `trigger ${channel} ${n}`);

  test('cut off while 100 events go out on two channels: same socket id, socket.recovered, all of them in order, none twice', async () => {
    const proxy = await proxied();
    const socket = recoveringSocket(proxy, token('csr-1'));
    open.push(socket);
    const first = await connected(socket);
    assert.equal(first.recovered, false);
    await subscribed(socket, 'csr-a');
    await subscribed(socket, 'csr-b');
    const channelOf = (n) => (n % 3 === 0 ? 'csr-b' : 'csr-a');
    for (let n = 1; n <= 20; n++) await publish(channelOf(n), n);
    await waitUntil(() => socket.got.length === 20, WAIT, () => `20 before the cut, got ${socket.got.length}`);
    assert.ok(socket.got.every((e) => typeof e.offset === 'string'), 'every channel event carries an offset string last');

    proxy.cut();
    await waitUntil(() => !socket.connected, WAIT, 'the client saw the cut');
    for (let n = 21; n <= 80; n++) {
      await publish(channelOf(n), n);
      await sleep(30); // about 2 s cut off
    }
    proxy.restore();
    for (let n = 81; n <= 100; n++) await publish(channelOf(n), n); // while it reconnects

    const second = await connected(socket, 2);
    assert.deepEqual(second, { id: first.id, recovered: true }, 'the same session');
    await waitUntil(() => socket.got.length >= 100, 20_000, () => `100 events, got ${socket.got.length}`);
    await sleep(200); // a copy that came late would show now
    for (const ch of ['csr-a', 'csr-b']) {
      const want = Array.from({ length: 100 }, (_, i) => i + 1).filter((n) => channelOf(n) === ch);
      assert.deepEqual(socket.got.filter((e) => e.channel === ch).map((e) => e.n), want, `${ch}: all, in order, none twice`);
    }
    assert.equal(socket.got.length, 100);

    // Still subscribed to both after the restore, with no subscribe of its own.
    await publish('csr-a', 101);
    await publish('csr-b', 102);
    await waitUntil(() => socket.got.length === 102, WAIT, 'live delivery after the restore');
    socket.disconnect();
  });

  test('a connection left hanging (a network switch): the client that comes back first takes it over, recovered', async () => {
    const proxy = await proxied();
    const socket = recoveringSocket(proxy, token('csr-6'));
    open.push(socket);
    const first = await connected(socket);
    await subscribed(socket, 'csr-h');
    await publish('csr-h', 1);
    await waitUntil(() => socket.got.length === 1, WAIT, 'one event');
    proxy.stall(); // the server's side stays open and silent
    for (let n = 2; n <= 11; n++) await publish('csr-h', n); // written to the hanging connection
    socket.io.engine.close(); // the client sees its network go first and reconnects
    const second = await connected(socket, 2);
    assert.deepEqual(second, { id: first.id, recovered: true }, 'the hanging session handed over');
    await waitUntil(() => socket.got.length >= 11, WAIT, () => `11 events, got ${socket.got.length}`);
    await sleep(200);
    assert.deepEqual(socket.got.map((e) => e.n), Array.from({ length: 11 }, (_, i) => i + 1));
    socket.disconnect();
  });

  test('an explicit disconnect ends the session: connecting again is not recovered, a new socket id', async () => {
    const proxy = await proxied();
    const socket = recoveringSocket(proxy, token('csr-2'));
    open.push(socket);
    const first = await connected(socket);
    await subscribed(socket, 'csr-c');
    await publish('csr-c', 1);
    await waitUntil(() => socket.got.length === 1, WAIT, 'one event');
    socket.disconnect();
    socket.connect(); // the client still sends its pid and offset
    const second = await connected(socket, 2);
    assert.equal(second.recovered, false);
    assert.notEqual(second.id, first.id);
    await publish('csr-c', 2);
    await sleep(300);
    assert.equal(socket.got.length, 1, 'the new session is on no channel');
    socket.disconnect();
  });

  test('a bad or expired token on the restoring CONNECT is refused; a good one then restores', async () => {
    const proxy = await proxied();
    let next = token('csr-3');
    const socket = recoveringSocket(proxy, () => next());
    open.push(socket);
    const refusals = [];
    socket.on('connect_error', (err) => refusals.push(refusalStatus(err)));
    const first = await connected(socket);
    await subscribed(socket, 'csr-d');
    await publish('csr-d', 1);
    await waitUntil(() => socket.got.length === 1, WAIT, 'one event');

    next = () => signJwt(claims({ ...userClaims('csr-3'), exp: nowSeconds() - 3600, iat: nowSeconds() - 7200 }));
    proxy.cut();
    await waitUntil(() => !socket.connected, WAIT, 'the client saw the cut');
    await publish('csr-d', 2);
    proxy.restore();
    await waitUntil(() => refusals.length > 0, WAIT, 'the expired token refused');
    assert.equal(refusals[0], 401);
    assert.equal(socket.connected, false);
    assert.equal(socket.got.length, 1, 'nothing delivered to a refused CONNECT');

    next = () => 'not-a-jwt';
    socket.connect();
    await waitUntil(() => refusals.length > 1, WAIT, 'the bad token refused');
    assert.equal(refusals[1], 401);

    next = token('csr-3');
    socket.connect();
    const second = await connected(socket, 2);
    assert.deepEqual(second, { id: first.id, recovered: true }, 'a good token restores the session');
    await waitUntil(() => socket.got.length === 2, WAIT, 'the missed event');
    assert.deepEqual(socket.got.map((e) => e.n), [1, 2]);
    socket.disconnect();
  });

  test('another user with the pid gets a fresh session', async () => {
    const proxy = await proxied();
    let sub = 'csr-4';
    const socket = recoveringSocket(proxy, () => token(sub)());
    open.push(socket);
    const first = await connected(socket);
    await subscribed(socket, 'csr-e');
    sub = 'csr-4-other';
    proxy.cut();
    await waitUntil(() => !socket.connected, WAIT, 'the client saw the cut');
    proxy.restore();
    const second = await connected(socket, 2);
    assert.equal(second.recovered, false);
    assert.notEqual(second.id, first.id);
    socket.disconnect();
  });

  test('history no longer covering a channel: not recovered, a fresh session on no channel', async () => {
    const proxy = await proxied();
    const socket = recoveringSocket(proxy, token('csr-5'));
    open.push(socket);
    const first = await connected(socket);
    await subscribed(socket, 'csr-f');
    await subscribed(socket, 'csr-g');
    await publish('csr-f', 0);
    await waitUntil(() => socket.got.length === 1, WAIT, 'one event');
    proxy.cut();
    await waitUntil(() => !socket.connected, WAIT, 'the client saw the cut');
    for (let n = 1; n <= 105; n++) await publish('csr-g', n); // more than HISTORY_SIZE (100)
    proxy.restore();
    const second = await connected(socket, 2);
    assert.equal(second.recovered, false);
    assert.notEqual(second.id, first.id);
    await sleep(300);
    assert.equal(socket.got.length, 1, 'no partial replay');
    socket.disconnect();
  });
});

describe('socket.io 4.x connection state recovery: the window', { skip, timeout: 60_000 }, () => {
  let srv;
  let pusher;
  const open = [];
  before(async () => {
    srv = await startServer(appEnv({ RECOVERY_WINDOW: '1s', HISTORY_SIZE: '100' }));
    pusher = sdk(srv);
  });
  after(async () => {
    for (const x of open) await x.close?.();
    await srv?.stop();
  });

  test('coming back after RECOVERY_WINDOW: not recovered, a fresh socket id, on no channel', async () => {
    const proxy = await startProxy(srv.url);
    open.push(proxy);
    const socket = recoveringSocket(proxy, token('csr-w'));
    open.push(socket);
    const first = await connected(socket);
    await subscribed(socket, 'csr-w');
    await ok(pusher.trigger('csr-w', 'n', { n: 1 }), 'trigger');
    await waitUntil(() => socket.got.length === 1, WAIT, 'one event');
    proxy.cut();
    await waitUntil(() => !socket.connected, WAIT, 'the client saw the cut');
    await sleep(2500); // past the window (the server's timer, not a figure under test)
    await ok(pusher.trigger('csr-w', 'n', { n: 2 }), 'trigger');
    proxy.restore();
    const second = await withTimeout(connected(socket, 2), WAIT, 'the reconnect');
    assert.equal(second.recovered, false);
    assert.notEqual(second.id, first.id);
    await sleep(300);
    assert.equal(socket.got.length, 1);
    socket.disconnect();
  });
});
