// socket.io-client 3.x/4.x (Engine.IO v4, socket.io protocol v5) beside 2.x (issue 17,
// PRODUCT §4): both ways of passing the token, every refusal as the v4 client sees it,
// a v2 and a v4 client in one presence channel, triggers reaching both, and the default
// path's reliability for v4 (mirrors reliability.test.mjs). The suites that run against
// both client majors live elsewhere; this file holds what only v4 has.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import io4 from 'socket.io-client-4';
import { startServer } from './helpers/server.mjs';
import { mint, claims, nowSeconds } from './helpers/jwt.mjs';
import { connect as connect2, sleep, withTimeout, Clients } from './helpers/clients.mjs';
import { userClaims, subscribeOk, record, waitForMatch, emitAck } from './helpers/channels.mjs';
import { appEnv, sdk, ok } from './helpers/pusher.mjs';

const SOCKET_ID = /^\d+\.\d+$/;

/** open4 starts a socket.io-client 4.x socket; reconnection off, as the v2 helpers do. */
function open4(url, { token, auth, clients, ...opts } = {}) {
  const socket = io4(url, {
    forceNew: true, reconnection: false, timeout: 10_000,
    ...(token !== undefined ? { query: { token } } : {}),
    ...(auth !== undefined ? { auth } : {}),
    ...opts,
  });
  clients?.add(socket);
  return socket;
}

/** connect4 resolves {socket, info} on connection_established; rejects on connect_error. */
function connect4(url, opts = {}) {
  const socket = open4(url, opts);
  return withTimeout(new Promise((resolve, reject) => {
    socket.once('jetsocket:connection_established', (info) => resolve({ socket, info }));
    socket.once('connect_error', (err) => { socket.close(); reject(err); });
  }), opts.timeoutMs ?? 10_000, 'v4 connection_established');
}

/** refused4 resolves with the connect_error of a connect that must fail. */
function refused4(url, opts = {}) {
  const socket = open4(url, opts);
  let established = false;
  socket.on('jetsocket:connection_established', () => { established = true; });
  return withTimeout(new Promise((resolve, reject) => {
    socket.once('connect', () => reject(new Error('connected although it must be refused')));
    socket.once('connect_error', (err) => { socket.close(); resolve(err); });
  }), 10_000, 'v4 connect_error').then((err) => { assert.equal(established, false); return err; });
}

function tampered() {
  const [h, , s] = mint({ sub: '1' }).split('.');
  const p = Buffer.from(JSON.stringify(claims({ sub: '2', role: 'admin' }))).toString('base64url');
  return `${h}.${p}.${s}`;
}

/** The bad tokens of §4 and the reason the server gives for each. */
function badTokens() {
  const now = nowSeconds();
  return [
    ['missing', undefined, 'missing'],
    ['malformed', 'not-a-jwt-malformed-e2e', 'malformed'],
    ['expired', mint({ iat: now - 7200, exp: now - 3600 }), 'expired'],
    ['not yet valid', mint({ nbf: now + 3600 }), 'not_yet_valid'],
    ['signed with another secret', mint({}, { secret: 'another-secret-0123456789abcdef-0123456789' }), 'bad_signature'],
    ['alg none', mint({}, { alg: 'none' }), null],
    ['alg HS512', mint({}, { alg: 'HS512' }), null],
    ['alg RS256 header with an HMAC signature', mint({}, { alg: 'RS256' }), null],
    ['tampered payload', tampered(), 'bad_signature'],
    ['oversized (> 8 KB)', mint({ padding: 'x'.repeat(9 * 1024) }), 'too_large'],
  ];
}

describe('socket.io-client 4.x: auth', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({ MAX_CONNECTIONS_PER_USER: '2' }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('a token in auth connects; the socket id is the Pusher-form id', async () => {
    const { socket, info } = await connect4(srv.url, { auth: { token: mint({ sub: 'v4-auth' }) }, clients });
    assert.match(info.socket_id, SOCKET_ID);
    assert.equal(info.user_id, 'v4-auth');
    assert.equal(socket.id, info.socket_id);
    assert.equal((await emitAck(socket, 'jetsocket:ping', {})).pong, true);
    socket.close();
  });

  test('a token in the query connects, over websocket only too', async () => {
    for (const transports of [undefined, ['websocket']]) {
      const { socket, info } = await connect4(srv.url, { token: mint({ sub: 'v4-query' }), clients, ...(transports ? { transports } : {}) });
      assert.equal(info.user_id, 'v4-query');
      socket.close();
    }
  });

  for (const [name, token, reason] of badTokens()) {
    test(`auth: ${name} is refused with CONNECT_ERROR invalid_token 401`, async () => {
      const err = await refused4(srv.url, { auth: token === undefined ? {} : { token }, clients });
      assert.equal(err.message, 'invalid_token');
      assert.equal(err.data?.status, 401);
      assert.equal(typeof err.data?.reason, 'string');
      if (reason) assert.equal(err.data.reason, reason);
    });
  }

  test('a bad token in the query is refused with HTTP 401 before any session', async () => {
    const err = await refused4(srv.url, { token: mint({}, { alg: 'none' }), clients });
    assert.equal(err.description, 401);
  });

  test('a bad auth token is refused even with a good query token (auth takes its place)', async () => {
    const err = await refused4(srv.url, { token: mint({ sub: 'q' }), auth: { token: 'aaaa.bbbb.cccc' }, clients });
    assert.equal(err.message, 'invalid_token');
  });

  test('the per-user limit refuses a third v4 connection with CONNECT_ERROR 429', async () => {
    const tok = mint({ sub: 'v4-limit' });
    const a = await connect4(srv.url, { auth: { token: tok }, clients });
    const b = await connect2(srv.url, tok, { clients }); // a v2 connection counts the same
    const err = await refused4(srv.url, { auth: { token: tok }, clients });
    assert.equal(err.message, 'too_many_connections');
    assert.equal(err.data?.status, 429);
    a.socket.close();
    b.socket.close();
  });

  test('no token appears in the log', async () => {
    const tok = mint({ sub: 'v4-log' });
    const { socket } = await connect4(srv.url, { auth: { token: tok }, clients });
    socket.close();
    await refused4(srv.url, { auth: { token: mint({}, { alg: 'none' }) }, clients });
    const sig = tok.split('.')[2];
    assert.ok(!srv.output().includes(sig), 'token signature in the log');
  });
});

describe('socket.io-client 2.x and 4.x on the same channels', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv()); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('presence: each sees the other join, gets client events and triggers', async () => {
    const ch = 'presence-mixed';
    const v2 = (await connect2(srv.url, mint(userClaims('mix-2')), { clients })).socket;
    const v4 = (await connect4(srv.url, { auth: { token: mint(userClaims('mix-4')) }, clients })).socket;
    const added2 = record(v2, 'jetsocket:member_added');
    const ack2 = await subscribeOk(v2, ch);
    assert.equal(ack2.presence.count, 1);
    const ack4 = await subscribeOk(v4, ch);
    assert.equal(ack4.presence.count, 2);
    assert.ok(ack4.presence.ids.includes('mix-2'));
    await waitForMatch(added2, (p) => p.user_id === 'mix-4', 5000, 'v2 sees v4 join');

    const got4 = record(v4, 'client-hello');
    const got2 = record(v2, 'client-hello');
    v2.emit('client-hello', { channel: ch, data: { from: 2 } });
    const m4 = await waitForMatch(got4, (p) => p.data?.from === 2, 5000, 'v4 gets v2 client event');
    assert.equal(m4.user_id, 'mix-2');
    v4.emit('client-hello', { channel: ch, data: { from: 4 } });
    const m2 = await waitForMatch(got2, (p) => p.data?.from === 4, 5000, 'v2 gets v4 client event');
    assert.equal(m2.user_id, 'mix-4');

    const t2 = record(v2, 'news');
    const t4 = record(v4, 'news');
    await ok(sdk(srv).trigger(ch, 'news', { n: 1 }), 'trigger');
    await waitForMatch(t2, (p) => p.data?.n === 1, 5000, 'trigger reaches v2');
    await waitForMatch(t4, (p) => p.data?.n === 1, 5000, 'trigger reaches v4');

    const removed2 = record(v2, 'jetsocket:member_removed');
    v4.close();
    await waitForMatch(removed2, (p) => p.user_id === 'mix-4', 5000, 'v2 sees v4 leave');
  });
});

const COUNT = 200;
const DELAYS_MS = [0, 200, 1000, 3000];
const STAGGER_MS = 75;

describe('reliability of the v4 default path', { timeout: 180_000 }, () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv({ MAX_CONNECTIONS_PER_IP: '0', MAX_CONNECTIONS_PER_USER: '0' })); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test(`${COUNT} default-option v4 connects each get every triggered event and ack`, { timeout: 170_000 }, async (t) => {
    const results = await Promise.all(Array.from({ length: COUNT }, async (_, i) => {
      await sleep(i * STAGGER_MS);
      const problems = [];
      let socket;
      try {
        ({ socket } = await connect4(srv.url, { auth: { token: mint({ sub: `rel4-${i}` }) }, clients }));
      } catch (err) {
        return { problems: [`connect: ${err.message}`] };
      }
      let disconnected = null;
      socket.on('disconnect', (r) => { disconnected = r; });
      const ticks = record(socket, 'tick');
      const start = Date.now();
      const api = sdk(srv);
      for (const [k, delay] of DELAYS_MS.entries()) {
        await sleep(Math.max(0, start + delay - Date.now()));
        try {
          // An event pushed by the server to this user's connection, then an ack round trip.
          await ok(api.sendToUser(`rel4-${i}`, 'tick', { k }), 'sendToUser');
          await waitForMatch(ticks, (p) => p?.k === k || p?.data?.k === k, 5000, `tick ${k}`);
          const ack = await emitAck(socket, 'jetsocket:ping', {}, 5000);
          if (ack?.pong !== true) problems.push(`ping@${delay}: bad ack`);
        } catch (err) {
          problems.push(`@${delay}ms: ${err.message}`);
        }
      }
      if (disconnected !== null) problems.push(`disconnect: ${disconnected}`);
      const transport = socket.io.engine?.transport?.name;
      socket.close();
      return { problems, transport };
    }));
    const bad = results.map((r, i) => [i, r.problems]).filter(([, p]) => p.length > 0);
    const finals = {};
    for (const r of results) if (r.transport) finals[r.transport] = (finals[r.transport] ?? 0) + 1;
    t.diagnostic(`${COUNT - bad.length}/${COUNT} v4 clients got everything (final transports ${JSON.stringify(finals)})`);
    assert.equal(bad.length, 0, bad.slice(0, 10).map(([i, p]) => `#${i}: ${p.join('; ')}`).join('\n'));
  });
});
