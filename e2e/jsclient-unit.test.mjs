// Unit tests of the JS client (public/js/jetsocket.js) in Node with a fake io(): the
// connection state machine, token handling, channels, presence, encryption. No server:
// the fake plays the server's side of each socket.io-client 2.x socket the client opens.
import { test, describe, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import nacl from 'tweetnacl';
import { waitUntil } from './helpers/channels.mjs';
import { signJwt, claims, nowSeconds } from './helpers/jwt.mjs';

const require = createRequire(import.meta.url);
const Jetsocket = require('../public/js/jetsocket.js');

const tick = () => new Promise((r) => setImmediate(r));

/** FakeSocket mirrors the parts of a socket.io-client 2.x Socket the client uses. */
class FakeSocket {
  constructor(url, opts) {
    this.url = url;
    this.opts = opts;
    this.listeners = Object.create(null); // event names such as "toString" are plain keys (socket.io prefixes them)
    this.sent = []; // {name, payload, ack}
    this.closed = false;
    this.io = { engine: { transport: { name: 'websocket' } } };
  }
  on(ev, fn) { (this.listeners[ev] = this.listeners[ev] || []).push(fn); return this; }
  fire(ev, ...args) { for (const fn of this.listeners[ev] || []) fn(...args); }
  onevent(packet) { this.fire(...packet.data); }
  emit(name, ...args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    // ack answers as the server would and then lets the client's promise chains run.
    this.sent.push({ name, payload: args[0], ack: ack && (async (...a) => { ack(...a); await tick(); }) });
  }
  close() { this.closed = true; }
  // The server's side:
  serverEmit(name, payload) { this.onevent({ data: [name, payload] }); }
  establish(socketId = '1.1', userId = '1') {
    this.fire('connect');
    this.serverEmit('jetsocket:connection_established', { socket_id: socketId, user_id: userId });
  }
  refuse(status) { this.fire('connect_error', Object.assign(new Error('xhr poll error'), { type: 'TransportError', description: status })); }
  drop(reason = 'transport close') { this.fire('disconnect', reason); }
  sentNamed(name) { return this.sent.filter((s) => s.name === name); }
  async waitSent(name, n = 1) {
    await waitUntil(() => this.sentNamed(name).length >= n, 3000, `${n} x ${name}; sent ${JSON.stringify(this.sent.map((s) => s.name))}`);
    return this.sentNamed(name)[n - 1];
  }
}

/** fakeIo returns an io() that records every socket it opens. */
function fakeIo() {
  const sockets = [];
  const io = (url, opts) => { const s = new FakeSocket(url, opts); sockets.push(s); return s; };
  io.sockets = sockets;
  io.last = () => sockets[sockets.length - 1];
  io.waitSocket = async (n) => { await waitUntil(() => sockets.length >= n, 3000, `socket #${n}`); return sockets[n - 1]; };
  return io;
}

/**
 * FakeSocket4 mirrors a socket.io-client 3.x/4.x Socket: events reach onAny listeners (4.x
 * has no onevent hook to wrap), and a token refused at CONNECT is a connect_error whose
 * data is {status, reason}.
 */
class FakeSocket4 extends FakeSocket {
  constructor(url, opts) { super(url, opts); this.anyListeners = []; }
  onAny(fn) { this.anyListeners.push(fn); return this; }
  serverEmit(name, payload) { for (const fn of this.anyListeners) fn(name, payload); this.fire(name, payload); }
  refuseConnect(status, reason = 'token is expired') {
    this.fire('connect_error', Object.assign(new Error('invalid_token'), { data: { status, reason } }));
  }
}

/** fakeIo4 is fakeIo for socket.io-client 4.x: its io.Socket has onAny, as the real one. */
function fakeIo4() {
  const io = fakeIo();
  const sockets = io.sockets;
  const io4 = (url, opts) => { const s = new FakeSocket4(url, opts); sockets.push(s); return s; };
  return Object.assign(io4, { sockets, last: io.last, waitSocket: io.waitSocket, Socket: FakeSocket4 });
}

/** client builds a Jetsocket on a fake io, recording its state changes. */
function client(opts = {}, io = fakeIo()) {
  let n = 0;
  const tokens = [];
  const token = opts.token ?? (() => { const t = signJwt(claims({ jti: String(++n) })); tokens.push(t); return t; });
  const js = new Jetsocket('app-key', { host: 'http://rt.test', io, nacl, token, retryMinMs: 10, retryMaxMs: 40, ackTimeoutMs: 1000, autoConnect: false, ...opts });
  const states = [];
  js.connection.bind('state_change', (s) => states.push(`${s.previous}>${s.current}`));
  return { js, io, states, tokens };
}

async function connected(js, io, n = 1, socketId = `${n}.${n}`) {
  const s = await io.waitSocket(n);
  s.establish(socketId);
  assert.equal(js.connection.state, 'connected');
  return s;
}

const key = (channel, master) => createHash('sha256').update(Buffer.concat([Buffer.from(channel), master])).digest();
function seal(data, k) {
  const nonce = randomBytes(24);
  const box = nacl.secretbox(new Uint8Array(Buffer.from(JSON.stringify(data))), new Uint8Array(nonce), new Uint8Array(k));
  return { nonce: nonce.toString('base64'), ciphertext: Buffer.from(box).toString('base64') };
}

describe('JS client: the socket.io-client 4.x transport', () => {
  test('chosen for a 4.x io(): the token goes in auth (never the query), events arrive through onAny', async () => {
    const { js, io, states, tokens } = client({}, fakeIo4());
    const got = [];
    js.bind('news-event', (d) => got.push(d));
    js.connect();
    const s = await io.waitSocket(1);
    assert.deepEqual(s.opts.auth, { token: tokens[0] });
    assert.equal(s.opts.query, undefined, 'no token in the query string');
    assert.equal(s.opts.reconnection, false, 'reconnects are the client\'s own');
    s.establish('12.34', '7');
    assert.equal(js.connection.socket_id, '12.34');
    s.serverEmit('news-event', { hello: 1 });
    assert.deepEqual(got, [{ hello: 1 }]);

    s.drop();
    const second = await io.waitSocket(2);
    assert.deepEqual(second.opts.auth, { token: tokens[1] }, 'the reconnect carries the new token, not the first');
    second.establish('2.2');
    assert.deepEqual(states, ['initialized>connecting', 'connecting>connected', 'connected>connecting', 'connecting>connected']);
    js.disconnect();
    assert.equal(second.closed, true);
  });

  test('a CONNECT_ERROR invalid_token {status: 401} asks the token function once more, then fails', async () => {
    const { js, io, states, tokens } = client({}, fakeIo4());
    const errors = [];
    js.connection.bind('error', (e) => errors.push(e));
    js.connect();
    (await io.waitSocket(1)).refuseConnect(401);
    (await io.waitSocket(2)).refuseConnect(401);
    await waitUntil(() => js.connection.state === 'failed', 3000, 'failed');
    assert.equal(tokens.length, 2);
    assert.deepEqual(states, ['initialized>connecting', 'connecting>failed']);
    assert.equal(js.connection.reason.status, 401);
    assert.equal(errors.at(-1).type, 'AuthError');
  });

  test('a handshake refused by HTTP (429) reads its status as with 2.x and is retried', async () => {
    const { js, io } = client({}, fakeIo4());
    js.connect();
    (await io.waitSocket(1)).refuse(429);
    await waitUntil(() => js.connection.state === 'unavailable', 3000, 'unavailable');
    assert.equal(js.connection.reason.status, 429);
    (await io.waitSocket(2)).establish('3.3');
    assert.equal(js.connection.state, 'connected');
    js.disconnect();
  });
});

describe('JS client: connection states', () => {
  test('initialized -> connecting -> connected; the token goes in the handshake query; socket_id set', async () => {
    const { js, io, states, tokens } = client();
    assert.equal(js.connection.state, 'initialized');
    const perState = [];
    js.connection.bind('connected', (info) => perState.push(info));
    js.connect();
    const s = await io.waitSocket(1);
    assert.equal(s.url, 'http://rt.test');
    assert.deepEqual(s.opts.query, { token: tokens[0] });
    assert.equal(s.opts.reconnection, false, 'reconnects are the client\'s own');
    s.establish('12.34', '7');
    assert.deepEqual(states, ['initialized>connecting', 'connecting>connected']);
    assert.equal(js.connection.socket_id, '12.34');
    assert.equal(js.connection.user_id, '7');
    assert.deepEqual(perState, [{ socket_id: '12.34', user_id: '7' }]);
    js.disconnect();
    assert.equal(s.closed, true);
    assert.deepEqual(states.slice(-1), ['connected>disconnected']);
    assert.equal(js.connection.socket_id, null);
  });

  test('a lost connection reconnects with a fresh token from the function and re-subscribes every channel', async () => {
    const { js, io, states, tokens } = client();
    js.connect();
    const first = await connected(js, io, 1);
    js.subscribe('news');
    await (await first.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news' });
    assert.equal(js.channel('news').subscribed, true);

    first.drop();
    assert.equal(js.connection.state, 'connecting');
    assert.equal(js.channel('news').subscribed, false, 'not subscribed while disconnected');
    const second = await io.waitSocket(2);
    assert.equal(tokens.length, 2, 'the token function is called for the reconnect');
    assert.deepEqual(second.opts.query, { token: tokens[1] }, 'the reconnect carries the new token, not the first');
    second.establish('2.2');
    const sub = await second.waitSent('jetsocket:subscribe');
    assert.deepEqual(sub.payload, { channel: 'news' });
    await sub.ack({ ok: true, channel: 'news' });
    assert.equal(js.channel('news').subscribed, true);
    assert.deepEqual(states, ['initialized>connecting', 'connecting>connected', 'connected>connecting', 'connecting>connected']);
    js.disconnect();
  });

  test('a refused handshake (401) asks the token function once more, then fails with the reason', async () => {
    const { js, io, states, tokens } = client();
    const errors = [];
    js.connection.bind('error', (e) => errors.push(e));
    js.connect();
    (await io.waitSocket(1)).refuse(401);
    (await io.waitSocket(2)).refuse(401);
    await waitUntil(() => js.connection.state === 'failed', 3000, 'failed');
    assert.equal(tokens.length, 2);
    assert.deepEqual(states, ['initialized>connecting', 'connecting>failed']);
    assert.equal(js.connection.reason.status, 401);
    assert.equal(errors.at(-1).type, 'AuthError');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(io.sockets.length, 2, 'no further attempt after failed');
  });

  test('a 401 whose retry succeeds connects', async () => {
    const { js, io } = client();
    js.connect();
    (await io.waitSocket(1)).refuse(401);
    await connected(js, io, 2);
    js.disconnect();
  });

  test('a refused static token fails at once', async () => {
    const { js, io, states } = client({ token: 'a.static.token' });
    js.connect();
    (await io.waitSocket(1)).refuse(401);
    assert.deepEqual(states, ['initialized>connecting', 'connecting>failed']);
    assert.equal(io.sockets.length, 1);
  });

  test('other failures go to unavailable and retry with backoff; connect() after failed starts over', async () => {
    const { js, io, states } = client();
    js.connect();
    (await io.waitSocket(1)).refuse(503);
    assert.equal(js.connection.state, 'unavailable');
    assert.equal(js.connection.reason.status, 503);
    (await io.waitSocket(2)).refuse(0);
    await connected(js, io, 3);
    assert.deepEqual(states, ['initialized>connecting', 'connecting>unavailable', 'unavailable>connected']);
    js.disconnect();
    js.connect();
    await connected(js, io, 4);
    js.disconnect();
  });

  test('a token function that throws or rejects is a failed attempt, retried', async () => {
    let n = 0;
    const { js, io } = client({ token: async () => { if (++n < 3) throw new Error('login service down'); return signJwt(claims()); } });
    js.connect();
    await connected(js, io, 1);
    assert.equal(n, 3);
    js.disconnect();
  });

  test('no connection_established within connectTimeoutMs: unavailable, retried', async () => {
    const { js, io } = client({ connectTimeoutMs: 50 });
    js.connect();
    const s = await io.waitSocket(1);
    await waitUntil(() => js.connection.state === 'unavailable', 3000, 'unavailable');
    assert.equal(s.closed, true);
    assert.equal(js.connection.reason.type, 'TimeoutError');
    await connected(js, io, 2);
    js.disconnect();
  });

  test('disconnect() while retrying stops every retry', async () => {
    const { js, io } = client();
    js.connect();
    (await io.waitSocket(1)).refuse(500);
    js.disconnect();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(io.sockets.length, 1);
    assert.equal(js.connection.state, 'disconnected');
  });

  test('before the token expires a fresh one is sent with jetsocket:refresh', async () => {
    let n = 0;
    const { js, io } = client({ token: () => signJwt(claims({ jti: String(++n), exp: nowSeconds() + 2 })) });
    const refreshed = [];
    js.connection.bind('token_refreshed', (r) => refreshed.push(r));
    js.connect();
    const s = await connected(js, io, 1);
    const r = await s.waitSent('jetsocket:refresh');
    assert.equal(n, 2);
    assert.match(r.payload.token, /^ey/);
    await r.ack({ ok: true, expires_at: 'later' });
    assert.deepEqual(refreshed, [{ expires_at: 'later' }]);
    js.disconnect();
  });

  test('Jetsocket.tokenExpiry reads exp from the JWT payload', () => {
    assert.equal(Jetsocket.tokenExpiry(signJwt(claims({ exp: 1234 }))), 1234000);
    assert.equal(Jetsocket.tokenExpiry('not a jwt'), 0);
  });

  test('one file for require and import: the same constructor', async () => {
    const imported = (await import('../public/js/jetsocket.js')).default;
    assert.equal(imported, Jetsocket);
    assert.equal(Jetsocket.Jetsocket, Jetsocket);
  });

  test('options are checked', () => {
    assert.throws(() => new Jetsocket('k', { host: 'http://x', io: fakeIo() }), /token option is required/);
    assert.throws(() => new Jetsocket('k', { token: 't', io: fakeIo() }), /host option is required/);
  });
});

describe('JS client: channels', () => {
  test('subscribe before connecting, succeeded and error events with {status, code, error}, unsubscribe', async () => {
    const { js, io } = client();
    const a = js.subscribe('news');
    const b = js.subscribe('private-nope');
    assert.equal(js.subscribe('news'), a, 'the same channel object');
    assert.deepEqual(js.allChannels().map((c) => c.name), ['news', 'private-nope']);
    const got = [];
    a.bind('jetsocket:subscription_succeeded', (d) => got.push(['ok', d]));
    b.bind('jetsocket:subscription_error', (e) => got.push(['err', e]));
    js.connect();
    const s = await connected(js, io, 1);
    const [sa, sb] = [await s.waitSent('jetsocket:subscribe', 1), await s.waitSent('jetsocket:subscribe', 2)];
    await sa.ack({ ok: true, channel: 'news' });
    await sb.ack({ ok: false, channel: 'private-nope', status: 403, code: 'forbidden', error: 'no rule allows it' });
    // The server's own events for the same outcome do not fire them twice.
    s.serverEmit('jetsocket:subscription_succeeded', { ok: true, channel: 'news' });
    s.serverEmit('jetsocket:subscription_error', { channel: 'private-nope', status: 403, code: 'forbidden', error: 'x' });
    assert.deepEqual(got, [
      ['ok', { ok: true, channel: 'news' }],
      ['err', { type: 'SubscriptionError', status: 403, code: 'forbidden', error: 'no rule allows it' }],
    ]);
    assert.equal(b.subscribed, false);

    js.unsubscribe('news');
    assert.deepEqual((await s.waitSent('jetsocket:unsubscribe')).payload, { channel: 'news' });
    assert.equal(js.channel('news'), undefined);
    assert.throws(() => js.subscribe('#server-to-user-1'), /internal channels/);
    js.disconnect();
  });

  test('a refresh that takes a channel away reports subscription_error on it', async () => {
    const { js, io } = client();
    js.connect();
    const s = await connected(js, io, 1);
    const ch = js.subscribe('private-group-x');
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'private-group-x' });
    const errs = [];
    ch.bind('jetsocket:subscription_error', (e) => errs.push(e));
    s.serverEmit('jetsocket:subscription_error', { channel: 'private-group-x', status: 403, code: 'forbidden', error: 'gone' });
    assert.deepEqual(errs, [{ type: 'SubscriptionError', status: 403, code: 'forbidden', error: 'gone' }]);
    assert.equal(ch.subscribed, false);
    js.disconnect();
  });

  test('events reach channel and client bindings as (data, metadata); bind_global; unbind', async () => {
    const { js, io } = client();
    js.connect();
    const s = await connected(js, io, 1);
    const ch = js.subscribe('private-room');
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'private-room' });
    const got = [];
    const onMsg = (d, m) => got.push(['ch', d, m]);
    ch.bind('client-msg', onMsg);
    ch.bind_global((e, d) => got.push(['chg', e, d]));
    js.bind('client-msg', (d, m) => got.push(['js', d, m]));
    js.bind('note', (d, m) => got.push(['user', d, m]));
    s.serverEmit('client-msg', { channel: 'private-room', data: { t: 1 }, user_id: '9' });
    s.serverEmit('client-msg', { channel: 'not-subscribed', data: { t: 2 } });
    s.serverEmit('note', { channel: '#server-to-user-1', data: 'hi' });
    ch.unbind('client-msg', onMsg);
    s.serverEmit('client-msg', { channel: 'private-room', data: { t: 3 }, user_id: '9' });
    assert.deepEqual(got, [
      ['chg', 'client-msg', { t: 1 }],
      ['ch', { t: 1 }, { channel: 'private-room', user_id: '9' }],
      ['js', { t: 1 }, { channel: 'private-room', user_id: '9' }],
      ['user', 'hi', { channel: '#server-to-user-1' }],
      ['chg', 'client-msg', { t: 3 }],
      ['js', { t: 3 }, { channel: 'private-room', user_id: '9' }],
    ]);
    js.disconnect();
  });

  test('trigger: client-* on private channels, throws on public and encrypted ones and for other names', async () => {
    const { js, io } = client();
    js.connect();
    const s = await connected(js, io, 1);
    const priv = js.subscribe('private-room');
    const pub = js.subscribe('news');
    const enc = js.subscribe('private-encrypted-room');
    await s.waitSent('jetsocket:subscribe', 3);
    for (const x of s.sentNamed('jetsocket:subscribe')) await x.ack({ ok: true, channel: x.payload.channel, shared_secret: Buffer.alloc(32).toString('base64') });
    assert.throws(() => pub.trigger('client-x', 1), /private- or presence-/);
    assert.throws(() => enc.trigger('client-x', 1), /encrypted/);
    assert.throws(() => priv.trigger('x', 1), /client-/);
    const p = priv.trigger('client-typing', { on: true });
    const sent = await s.waitSent('client-typing');
    assert.deepEqual(sent.payload, { channel: 'private-room', data: { on: true } });
    await sent.ack({ ok: true });
    assert.deepEqual(await p, { ok: true });
    js.disconnect();
  });

  test('presence: members from the ack, kept in step with member_added / member_removed', async () => {
    const { js, io } = client();
    js.connect();
    const s = await connected(js, io, 1, '5.5');
    const ch = js.subscribe('presence-lobby');
    const events = [];
    ch.bind('jetsocket:subscription_succeeded', (m) => events.push(['ok', m.count]));
    ch.bind('jetsocket:member_added', (m) => events.push(['added', m]));
    ch.bind('jetsocket:member_removed', (m) => events.push(['removed', m]));
    await (await s.waitSent('jetsocket:subscribe')).ack({
      ok: true, channel: 'presence-lobby', presence: { count: 2, ids: ['1', '2'], hash: { 1: { name: 'Alice' }, 2: { name: 'Bob' } } },
    });
    assert.equal(ch.members.count, 2);
    assert.deepEqual(ch.members.me, { id: '1', info: { name: 'Alice' } });
    assert.deepEqual(ch.members.get('2'), { id: '2', info: { name: 'Bob' } });
    s.serverEmit('jetsocket:member_added', { channel: 'presence-lobby', user_id: '3', user_info: { name: 'Carol' } });
    s.serverEmit('jetsocket:member_removed', { channel: 'presence-lobby', user_id: '2' });
    s.serverEmit('jetsocket:member_removed', { channel: 'presence-lobby', user_id: 'unknown' });
    const seen = [];
    ch.members.each((m) => seen.push(m.id));
    assert.deepEqual(seen.sort(), ['1', '3']);
    assert.equal(ch.members.count, 2);
    assert.equal(ch.members.get('2'), null);
    assert.deepEqual(events, [
      ['ok', 2],
      ['added', { id: '3', info: { name: 'Carol' } }],
      ['removed', { id: '2', info: { name: 'Bob' } }],
    ]);
    js.disconnect();
  });

  // Names that Object.prototype has (valid channel names and user ids) are plain keys:
  // a member "__proto__" must not bring in fake members, a channel "constructor" or
  // "__proto__" must be a channel of its own, an event "toString" an event.
  test('channel names, event names and member ids such as __proto__ and constructor are plain keys', async () => {
    const { js, io } = client();
    js.connect();
    const s = await connected(js, io, 1, '6.6');
    const ch = js.subscribe('presence-lobby');
    await (await s.waitSent('jetsocket:subscribe')).ack({
      ok: true, channel: 'presence-lobby', presence: { count: 1, ids: ['1'], hash: { 1: { name: 'Alice' } } },
    });
    s.serverEmit('jetsocket:member_added', { channel: 'presence-lobby', user_id: '__proto__', user_info: { name: 'Mallory' } });
    s.serverEmit('jetsocket:member_added', { channel: 'presence-lobby', user_id: 'constructor', user_info: { name: 'Eve' } });
    const seen = [];
    ch.members.each((m) => seen.push(m.id));
    assert.deepEqual(seen.sort(), ['1', '__proto__', 'constructor']);
    assert.equal(ch.members.count, 3);
    assert.deepEqual(ch.members.get('__proto__'), { id: '__proto__', info: { name: 'Mallory' } });
    s.serverEmit('jetsocket:member_removed', { channel: 'presence-lobby', user_id: '__proto__' });
    assert.equal(ch.members.count, 2);

    for (const name of ['constructor', '__proto__', 'toString']) {
      assert.equal(js.channel(name), undefined, `channel(${name}) before subscribing`);
      const c = js.subscribe(name);
      assert.ok(c instanceof Jetsocket.Channel, `subscribe(${name}) gives a Channel`);
      assert.equal(c.name, name);
      await (await s.waitSent('jetsocket:subscribe', 2 + ['constructor', '__proto__', 'toString'].indexOf(name))).ack({ ok: true, channel: name });
      assert.equal(c.subscribed, true);
    }
    assert.equal(Object.prototype.subscriptionPending, undefined, 'Object.prototype untouched');
    assert.equal(Object.prototype.request, undefined, 'Object.prototype untouched');
    const got = [];
    js.channel('constructor').bind('toString', (d) => got.push(d));
    js.channel('constructor').bind('hasOwnProperty', (d) => got.push(d));
    s.serverEmit('toString', { channel: 'constructor', data: 1 });
    s.serverEmit('hasOwnProperty', { channel: 'constructor', data: 2 });
    s.serverEmit('valueOf', { channel: 'constructor', data: 3 });
    assert.deepEqual(got, [1, 2]);
    assert.deepEqual(js.allChannels().map((c) => c.name).sort(), ['__proto__', 'constructor', 'presence-lobby', 'toString']);
    js.disconnect();
  });

  test('channelAuthorization: form-encoded POST of socket_id and channel_name; auth and channel_data sent, me from channel_data', async () => {
    const calls = [];
    const fetch = async (url, init) => {
      calls.push({ url, init });
      return new Response(JSON.stringify({ auth: 'k:sig', channel_data: JSON.stringify({ user_id: 'crm-1', user_info: {} }) }), { status: 200 });
    };
    const { js, io } = client({ fetch, channelAuthorization: { endpoint: '/auth', headers: { 'X-Csrf': 'c' }, params: { extra: 'y' } } });
    js.connect();
    const s = await connected(js, io, 1, '7.8');
    const ch = js.subscribe('presence-crm');
    js.subscribe('public-news'); // no auth for public channels
    const sub = await s.waitSent('jetsocket:subscribe', 2);
    const bySub = Object.fromEntries(s.sentNamed('jetsocket:subscribe').map((x) => [x.payload.channel, x]));
    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, 'http://rt.test/auth');
    assert.equal(calls[0].init.method, 'POST');
    assert.equal(calls[0].init.headers['Content-Type'], 'application/x-www-form-urlencoded');
    assert.equal(calls[0].init.headers['X-Csrf'], 'c');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(calls[0].init.body)), { extra: 'y', socket_id: '7.8', channel_name: 'presence-crm' });
    assert.deepEqual(bySub['presence-crm'].payload, { channel: 'presence-crm', auth: 'k:sig', channel_data: '{"user_id":"crm-1","user_info":{}}' });
    assert.deepEqual(bySub['public-news'].payload, { channel: 'public-news' });
    assert.ok(sub);
    await bySub['presence-crm'].ack({ ok: true, channel: 'presence-crm', presence: { count: 1, ids: ['crm-1'], hash: { 'crm-1': {} } } });
    assert.equal(ch.members.me.id, 'crm-1');
    js.disconnect();
  });

  test('an auth endpoint that refuses gives subscription_error with its status, and nothing is sent', async () => {
    const fetch = async () => new Response('{"error":"no"}', { status: 403 });
    const { js, io } = client({ fetch, channelAuthorization: { endpoint: 'http://app.test/auth' } });
    js.connect();
    const s = await connected(js, io, 1);
    const ch = js.subscribe('private-x');
    const err = await new Promise((r) => ch.bind('jetsocket:subscription_error', r));
    assert.equal(err.status, 403);
    assert.equal(err.type, 'AuthError');
    assert.equal(s.sentNamed('jetsocket:subscribe').length, 0);
    js.disconnect();
  });

  test('signin: POSTs socket_id to userAuthentication and sends jetsocket:signin, again after a reconnect', async () => {
    const bodies = [];
    const fetch = async (url, init) => { bodies.push(init.body); return new Response(JSON.stringify({ auth: 'k:s', user_data: '{"id":"u1"}' })); };
    const { js, io } = client({ fetch, userAuthentication: { endpoint: 'http://app.test/user-auth' } });
    js.connect();
    const s = await connected(js, io, 1, '1.2');
    const p = js.signin();
    const sent = await s.waitSent('jetsocket:signin');
    assert.deepEqual(sent.payload, { auth: 'k:s', user_data: '{"id":"u1"}' });
    await sent.ack({ ok: true, user_id: 'u1' });
    assert.deepEqual(await p, { ok: true, user_id: 'u1' });
    assert.deepEqual(bodies, ['socket_id=1.2']);
    s.drop();
    const s2 = await connected(js, io, 2, '3.4');
    await s2.waitSent('jetsocket:signin');
    assert.deepEqual(bodies, ['socket_id=1.2', 'socket_id=3.4']);
    js.disconnect();
  });

  test('encrypted: payloads decrypted with shared_secret; one that does not decrypt fires decryption_error and re-subscribes once', async () => {
    const master = randomBytes(32);
    const { js, io } = client();
    js.connect();
    const s = await connected(js, io, 1);
    const ch = js.subscribe('private-encrypted-room');
    const got = [];
    ch.bind('secret', (d, m) => got.push(['secret', d, m]));
    ch.bind('jetsocket:decryption_error', (e) => got.push(['decryption_error', e.event]));
    ch.bind('jetsocket:subscription_succeeded', () => got.push(['succeeded']));
    const k = key('private-encrypted-room', master);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'private-encrypted-room', shared_secret: k.toString('base64') });
    s.serverEmit('secret', { channel: 'private-encrypted-room', data: seal({ text: 'caf\u00e9' }, k) });
    const wrong = key('private-encrypted-room', randomBytes(32));
    s.serverEmit('secret', { channel: 'private-encrypted-room', data: seal({ text: 'x' }, wrong) });
    s.serverEmit('secret', { channel: 'private-encrypted-room', data: seal({ text: 'y' }, wrong) });
    s.serverEmit('secret', { channel: 'private-encrypted-room', data: 'plaintext' });
    const again = await s.waitSent('jetsocket:subscribe', 2);
    assert.equal(s.sentNamed('jetsocket:subscribe').length, 2, 'one re-subscribe for a fresh key');
    await again.ack({ ok: true, channel: 'private-encrypted-room', shared_secret: wrong.toString('base64') });
    s.serverEmit('secret', { channel: 'private-encrypted-room', data: seal({ text: 'new key' }, wrong) });
    assert.deepEqual(got, [
      ['succeeded'],
      ['secret', { text: 'caf\u00e9' }, { channel: 'private-encrypted-room' }],
      ['decryption_error', 'secret'],
      ['decryption_error', 'secret'],
      ['decryption_error', 'secret'],
      ['secret', { text: 'new key' }, { channel: 'private-encrypted-room' }],
    ]);
    js.disconnect();
  });
});

// History and recovery (PRODUCT.md §14): the client keeps each channel's position, sends
// it as `since`, passes the replay on like live events and then fires jetsocket:recovery.
describe('JS client: positions and recovery', () => {
  const pub = (channel, epoch, offset, data = offset) => ({ channel, epoch, offset, data });

  /** recorder binds a channel's events and recovery notices in one list. */
  function recorder(ch) {
    const log = [];
    ch.bind('msg', (d, m) => log.push(['msg', d, m.offset, m.epoch]));
    ch.bind('jetsocket:recovery', (r) => log.push(['recovery', r]));
    return log;
  }

  for (const [major, io] of [['2.x', fakeIo], ['4.x', fakeIo4]]) {
    test(`socket.io-client ${major}: a reconnect re-subscribes with since, the replay reaches callbacks with metadata.offset, then jetsocket:recovery`, async () => {
      const { js, io: fake } = client({}, io());
      const ch = js.subscribe('news');
      const log = recorder(ch);
      js.connect();
      const s = await connected(js, fake, 1);
      const first = await s.waitSent('jetsocket:subscribe');
      assert.equal(first.payload.since, undefined, 'a first subscribe has no position to send');
      await first.ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 0 } });
      s.serverEmit('msg', pub('news', 'E', 1));
      s.serverEmit('msg', pub('news', 'E', 2));
      assert.deepEqual(ch.position, { epoch: 'E', offset: 2 });

      s.drop();
      const s2 = await fake.waitSocket(2);
      s2.establish('2.2');
      const sub = await s2.waitSent('jetsocket:subscribe');
      assert.deepEqual(sub.payload, { channel: 'news', since: { epoch: 'E', offset: 2 } });
      // The ack and its replay arrive in one transport payload: dispatched with no tick between.
      sub.ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 4 }, recovered: true });
      s2.serverEmit('msg', pub('news', 'E', 3));
      s2.serverEmit('msg', pub('news', 'E', 4));
      s2.serverEmit('msg', pub('news', 'E', 4)); // a live copy of a replayed one
      s2.serverEmit('msg', pub('news', 'E', 5));
      await tick();
      assert.deepEqual(log, [
        ['msg', 1, 1, 'E'], ['msg', 2, 2, 'E'],
        ['msg', 3, 3, 'E'], ['msg', 4, 4, 'E'],
        ['recovery', { recovered: true, replayed: 2 }],
        ['msg', 5, 5, 'E'],
      ]);
      js.disconnect();
    });
  }

  test('recovered:false: nothing replayed, the app is told, delivery goes on from the ack position', async () => {
    const { js, io } = client();
    const ch = js.subscribe('news');
    const log = recorder(ch);
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 7 } });
    s.serverEmit('msg', pub('news', 'E', 8));
    s.drop();
    const s2 = await io.waitSocket(2);
    s2.establish('2.2');
    const sub = await s2.waitSent('jetsocket:subscribe');
    assert.deepEqual(sub.payload.since, { epoch: 'E', offset: 8 });
    await sub.ack({ ok: true, channel: 'news', position: { epoch: 'F', offset: 3 }, recovered: false });
    s2.serverEmit('msg', pub('news', 'F', 4));
    assert.deepEqual(log, [['msg', 8, 8, 'E'], ['recovery', { recovered: false, replayed: 0 }], ['msg', 4, 4, 'F']]);
    assert.deepEqual(ch.position, { epoch: 'F', offset: 4 });
    js.disconnect();
  });

  test('recovered with nothing missed: jetsocket:recovery {recovered: true, replayed: 0} at once', async () => {
    const { js, io } = client();
    const ch = js.subscribe('news');
    const log = recorder(ch);
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 5 } });
    s.drop();
    const s2 = await io.waitSocket(2);
    s2.establish('2.2');
    await (await s2.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 5 }, recovered: true });
    assert.deepEqual(log, [['recovery', { recovered: true, replayed: 0 }]]);
    js.disconnect();
  });

  test('a gap on live delivery re-subscribes once from the last position; the replay fills it in order', async () => {
    const { js, io } = client();
    const ch = js.subscribe('news');
    const log = recorder(ch);
    const succeeded = [];
    ch.bind('jetsocket:subscription_succeeded', () => succeeded.push(1));
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 0 } });
    s.serverEmit('msg', pub('news', 'E', 1));
    s.serverEmit('msg', pub('news', 'E', 3)); // 2 never came
    const again = await s.waitSent('jetsocket:subscribe', 2);
    assert.deepEqual(again.payload, { channel: 'news', since: { epoch: 'E', offset: 1 } });
    s.serverEmit('msg', pub('news', 'E', 4)); // before the ack: the replay brings it
    again.ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 4 }, recovered: true });
    for (const n of [2, 3, 4, 5]) s.serverEmit('msg', pub('news', 'E', n));
    await tick();
    assert.deepEqual(log.map((e) => e[0] === 'msg' ? e[2] : e[1]), [1, 2, 3, 4, { recovered: true, replayed: 3 }, 5]);
    assert.equal(succeeded.length, 1, 'the gap re-subscribe is quiet');
    js.disconnect();
  });

  test('a gap that is still there after its re-subscribe is accepted, not looped on', async () => {
    const { js, io } = client();
    const ch = js.subscribe('news');
    const log = recorder(ch);
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 2 } });
    s.serverEmit('msg', pub('news', 'E', 4));
    const again = await s.waitSent('jetsocket:subscribe', 2);
    await again.ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 2 }, recovered: true });
    s.serverEmit('msg', pub('news', 'E', 4));
    s.serverEmit('msg', pub('news', 'E', 5));
    await tick();
    assert.equal(s.sentNamed('jetsocket:subscribe').length, 2, 'one re-subscribe for the gap, no more');
    assert.deepEqual(log, [['recovery', { recovered: true, replayed: 0 }], ['msg', 4, 4, 'E'], ['msg', 5, 5, 'E']]);
    js.disconnect();
  });

  test('a changed epoch on live delivery is a gap: re-subscribe with the last position', async () => {
    const { js, io } = client();
    const ch = js.subscribe('news');
    const log = recorder(ch);
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 9 } });
    s.serverEmit('msg', pub('news', 'N', 1));
    const again = await s.waitSent('jetsocket:subscribe', 2);
    assert.deepEqual(again.payload.since, { epoch: 'E', offset: 9 });
    await again.ack({ ok: true, channel: 'news', position: { epoch: 'N', offset: 1 }, recovered: false });
    s.serverEmit('msg', pub('news', 'N', 2));
    assert.deepEqual(log, [['recovery', { recovered: false, replayed: 0 }], ['msg', 2, 2, 'N']]);
    js.disconnect();
  });

  test("the client's own client event (position in the trigger's ack) is no gap", async () => {
    const { js, io } = client();
    const ch = js.subscribe('private-room');
    const log = recorder(ch);
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'private-room', position: { epoch: 'E', offset: 1 } });
    s.serverEmit('msg', pub('private-room', 'E', 2));
    const p = ch.trigger('client-typing', { on: true });
    await (await s.waitSent('client-typing')).ack({ ok: true, epoch: 'E', offset: 4 }); // 3 is someone else's, still in flight
    await p;
    s.serverEmit('msg', pub('private-room', 'E', 3));
    s.serverEmit('msg', pub('private-room', 'E', 5));
    assert.equal(s.sentNamed('jetsocket:subscribe').length, 1, 'no re-subscribe');
    assert.deepEqual(log.map((e) => e[2]), [2, 3, 5]);
    assert.deepEqual(ch.position, { epoch: 'E', offset: 5 });
    js.disconnect();
  });

  test("an ack without the position: the gap re-subscribe's replay passes over the client's own client event", async () => {
    const { js, io } = client();
    const ch = js.subscribe('private-room');
    const log = [];
    ch.bind_global((event, d, m) => log.push([event, m && m.offset]));
    js.connect();
    const s = await connected(js, io, 1); // user id '1'
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'private-room', position: { epoch: 'E', offset: 1 } });
    const p = ch.trigger('client-typing', { on: true });
    await (await s.waitSent('client-typing')).ack({ ok: true });
    await p;
    s.serverEmit('msg', pub('private-room', 'E', 3)); // 2 was our own
    const again = await s.waitSent('jetsocket:subscribe', 2);
    again.ack({ ok: true, channel: 'private-room', position: { epoch: 'E', offset: 3 }, recovered: true });
    s.serverEmit('client-typing', { ...pub('private-room', 'E', 2, { on: true }), user_id: '1' });
    s.serverEmit('client-typing', { ...pub('private-room', 'E', 3, { on: true }), user_id: '2' });
    await tick();
    assert.deepEqual(log.filter(([e]) => !e.startsWith('jetsocket:subscription')), [
      ['client-typing', 3], ['jetsocket:recovery', undefined],
    ]);
    assert.deepEqual(ch.position, { epoch: 'E', offset: 3 });
    js.disconnect();
  });

  test('jetsocket:skip (a trigger that excluded this socket) moves the position on: no gap, no callback', async () => {
    const { js, io } = client();
    const ch = js.subscribe('news');
    const all = [];
    ch.bind_global((event, d, m) => all.push([event, m && m.offset]));
    js.bind_global((event) => all.push(['client:' + event]));
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 1 } });
    for (let i = 2; i <= 11; i++) s.serverEmit('jetsocket:skip', { channel: 'news', epoch: 'E', offset: i });
    s.serverEmit('msg', pub('news', 'E', 12));
    s.serverEmit('jetsocket:skip', { channel: 'news', epoch: 'E', offset: 12 }); // a copy: ignored
    s.serverEmit('jetsocket:skip', { channel: 'other', epoch: 'E', offset: 1 }); // not subscribed
    await tick();
    assert.equal(s.sentNamed('jetsocket:subscribe').length, 1, 'no re-subscribe');
    assert.deepEqual(all.filter(([e]) => !e.includes('subscription') && !e.includes('connection_established')), [['msg', 12], ['client:msg']]);
    assert.deepEqual(ch.position, { epoch: 'E', offset: 12 });

    // A skip past a gap is a gap: the quiet re-subscribe, whose replay ends on a skip.
    s.serverEmit('jetsocket:skip', { channel: 'news', epoch: 'E', offset: 14 });
    const again = await s.waitSent('jetsocket:subscribe', 2);
    assert.deepEqual(again.payload.since, { epoch: 'E', offset: 12 });
    const log = recorder(ch);
    again.ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 14 }, recovered: true });
    s.serverEmit('msg', pub('news', 'E', 13));
    s.serverEmit('jetsocket:skip', { channel: 'news', epoch: 'E', offset: 14 });
    await tick();
    assert.deepEqual(log, [['msg', 13, 13, 'E'], ['recovery', { recovered: true, replayed: 1 }]]);
    assert.deepEqual(ch.position, { epoch: 'E', offset: 14 });
    js.disconnect();
  });

  test('unsubscribe forgets the position: a later subscribe starts fresh', async () => {
    const { js, io } = client();
    js.subscribe('news');
    js.connect();
    const s = await connected(js, io, 1);
    await (await s.waitSent('jetsocket:subscribe')).ack({ ok: true, channel: 'news', position: { epoch: 'E', offset: 3 } });
    js.unsubscribe('news');
    js.subscribe('news');
    const again = await s.waitSent('jetsocket:subscribe', 2);
    assert.equal(again.payload.since, undefined);
    js.disconnect();
  });
});

/**
 * withClock runs fn with setTimeout and Date mocked (node:test's mock timers), so that
 * days of token life pass in an instant; advance(ms) moves the clock in steps and lets
 * the client's promise chains run between them (setImmediate is not mocked).
 */
async function withClock(fn) {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  const advance = async (ms, step = 250) => {
    for (let t = 0; t < ms; t += step) {
      mock.timers.tick(Math.min(step, ms - t));
      for (let i = 0; i < 5; i++) await tick();
    }
  };
  try {
    await fn(advance);
  } finally {
    mock.timers.reset();
  }
}

/** answerRefreshes makes s accept every jetsocket:refresh at once, as a server does. */
function answerRefreshes(s) {
  const emit = s.emit.bind(s);
  s.emit = (name, ...args) => {
    emit(name, ...args);
    const sent = s.sent.at(-1);
    if (name === 'jetsocket:refresh' && sent.ack) sent.ack({ ok: true, expires_at: 'later' });
  };
}

describe('JS client: the refresh timer has a floor and a ceiling', () => {
  test('a token function that gives the same token again: nothing sent, reported once, asked at most every minRefreshIntervalMs', async () => {
    await withClock(async (advance) => {
      const same = signJwt(claims({ exp: nowSeconds() + 120 }));
      let calls = 0;
      let later = null; // once set, the function gives this renewed token
      const { js, io } = client({ token: () => { calls++; return later || same; } });
      const errors = [];
      js.connection.bind('error', (e) => errors.push(e));
      js.connect();
      await advance(10);
      const s = io.last();
      answerRefreshes(s);
      s.establish();
      await advance(119_000); // the token's whole life but a second
      // Connect, then from 60 s before the expiry at most one ask per 10 s (before the
      // fix: hundreds of asks and refreshes, each sooner than the last).
      assert.ok(calls >= 2 && calls <= 1 + 6, `token function called ${calls} times`);
      assert.equal(s.sentNamed('jetsocket:refresh').length, 0, 'the same token is not sent');
      assert.deepEqual(errors.map((e) => e.code), ['token_not_renewed']);
      js.disconnect();

      // A token function that renews later: the renewed token is sent.
      calls = 0;
      const again = signJwt(claims({ exp: nowSeconds() + 120 }));
      const second = client({ token: () => { calls++; return calls > 2 && later ? later : again; } });
      later = signJwt(claims({ exp: nowSeconds() + 3600, jti: 'renewed' }));
      second.js.connect();
      await advance(10);
      const s2 = second.io.last();
      answerRefreshes(s2);
      s2.establish();
      await advance(119_000);
      const sent = s2.sentNamed('jetsocket:refresh');
      assert.equal(sent.length, 1, `refreshes sent: ${sent.length}`);
      assert.equal(sent[0].payload.token, later);
      second.js.disconnect();
    });
  });

  test('a token living longer than setTimeout can wait (24.8 days) is refreshed near its expiry, not at once', async () => {
    // Real timers: an overflowing setTimeout fires at once, which mock timers do not copy.
    let calls = 0;
    const long = signJwt(claims({ exp: nowSeconds() + 40 * 24 * 3600 }));
    const { js, io } = client({ token: () => { calls++; return calls === 1 ? long : signJwt(claims({ exp: nowSeconds() + 41 * 24 * 3600, jti: String(calls) })); } });
    js.connect();
    const s = await io.waitSocket(1);
    answerRefreshes(s);
    s.establish();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(calls, 1, 'the token function was asked again at once');
    assert.equal(s.sentNamed('jetsocket:refresh').length, 0);
    js.disconnect();
  });

  test('the wait is made of steps no longer than setTimeout allows, and still ends at the refresh', async () => {
    await withClock(async (advance) => {
      let calls = 0;
      const { js, io } = client({ token: () => signJwt(claims({ exp: nowSeconds() + 30 * 24 * 3600, jti: String(++calls) })) });
      js.connect();
      await advance(10);
      const s = io.last();
      answerRefreshes(s);
      s.establish();
      await advance(30 * 24 * 3600 * 1000 - 120_000, 3600_000);
      assert.equal(calls, 1, 'asked before the margin');
      await advance(119_000, 1000);
      assert.equal(calls, 2);
      assert.equal(s.sentNamed('jetsocket:refresh').length, 1);
      js.disconnect();
    });
  });
});

describe('JS client: terminated and reconnect backoff', () => {
  test('jetsocket:terminated: disconnected, no reconnect, the reason reported and the event delivered', async () => {
    const { js, io, states } = client();
    const got = [];
    js.bind('jetsocket:terminated', (d) => got.push(d));
    js.connect();
    const s = await connected(js, io, 1);
    s.serverEmit('jetsocket:terminated', { code: 'terminated', reason: 'terminated by the HTTP API' });
    s.drop('io server disconnect');
    assert.equal(js.connection.state, 'disconnected');
    assert.equal(js.connection.reason.type, 'TerminatedError');
    assert.equal(js.connection.reason.error, 'terminated by the HTTP API');
    assert.deepEqual(got, [{ code: 'terminated', reason: 'terminated by the HTTP API' }]);
    assert.equal(s.closed, true);
    await new Promise((r) => setTimeout(r, 150)); // retries here wait 10 to 40 ms
    assert.equal(io.sockets.length, 1, 'reconnected after a termination');
    assert.deepEqual(states, ['initialized>connecting', 'connecting>connected', 'connected>disconnected']);
    // connect() is the application's own decision: it works.
    js.connect();
    await connected(js, io, 2);
    js.disconnect();
  });

  test('connections that drop soon after they are up back off exponentially; one that stays up starts over', async () => {
    await withClock(async (advance) => {
      const { js, io } = client({ retryMinMs: 1000, retryMaxMs: 16000, stableAfterMs: 30000 });
      js.connect();
      await advance(10);
      // waitNext advances until the next socket opens and returns how long that took.
      const waitNext = async () => {
        const n = io.sockets.length;
        let waited = 0;
        while (io.sockets.length === n) {
          assert.ok(waited < 60_000, 'no reconnect within a minute');
          await advance(50, 50);
          waited += 50;
        }
        return waited;
      };
      const waits = [];
      for (let i = 0; i < 6; i++) {
        const s = io.last();
        s.establish(`${i}.1`);
        s.drop();
        waits.push(await waitNext());
      }
      // 1st: < retryMinMs; then 1, 2, 4, 8, 16 s with jitter (half to all of it).
      assert.ok(waits[0] <= 1050, `waits ${waits}`);
      assert.ok(waits[3] >= 2000 && waits[5] >= 8000 && waits[5] <= 16_050, `waits ${waits}`);
      // A connection that stays up: the next drop is back to a short wait.
      io.last().establish('9.1');
      await advance(31_000, 1000);
      io.last().drop();
      assert.ok(await waitNext() <= 1050, 'the backoff did not start over');
      js.disconnect();
    });
  });
});

describe('JS client: watchlist', () => {
  test('jetsocket:watchlist_events fires each entry on user.watchlist, as pusher-js does; bound before signin()', async () => {
    const { js, io } = client();
    const got = [];
    js.user.watchlist.bind('online', (e) => got.push(['online', e.user_ids]));
    js.user.watchlist.bind('offline', (e) => got.push(['offline', e.user_ids]));
    js.connect();
    const s = await io.waitSocket(1);
    s.establish();
    s.serverEmit('jetsocket:watchlist_events', { events: [{ name: 'online', user_ids: ['2'] }, { name: 'offline', user_ids: ['3'] }] });
    s.serverEmit('jetsocket:watchlist_events', { events: [{ name: 'offline', user_ids: ['2'] }] });
    s.serverEmit('jetsocket:watchlist_events', { events: 'bad' }); // ignored, not thrown
    assert.deepEqual(got, [['online', ['2']], ['offline', ['3']], ['offline', ['2']]]);
    assert.equal(js.user.id, undefined, 'not signed in');
    js.disconnect();
  });
});
