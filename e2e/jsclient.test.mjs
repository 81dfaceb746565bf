// The JS client (public/js/jetsocket.js) in Node against the real binary, with the real
// socket.io-client (CLIENT_MAJOR: 2.5 or 4.8; the client picks its transport by it) and tweetnacl: every method of PRODUCT §11. Tokens are minted here
// (helpers/jwt.mjs) so their lifetimes can be short; backends are the official pusher SDK.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import { randomBytes, createHash } from 'node:crypto';
import { io } from './helpers/clients.mjs';
import nacl from 'tweetnacl';
import { startServer } from './helpers/server.mjs';
import { signJwt, claims, nowSeconds } from './helpers/jwt.mjs';
import { expectRefused, refusalStatus, withTimeout } from './helpers/clients.mjs';
import { userClaims, waitUntil } from './helpers/channels.mjs';
import { APP, MASTER_KEY_B64, appEnv, sdk, ok } from './helpers/pusher.mjs';
import { startProxy } from './helpers/tcpproxy.mjs';

const require = createRequire(import.meta.url);
const Jetsocket = require('../public/js/jetsocket.js');

const WAIT = 8000;

/** recordingIo is socket.io-client's io() with every emit of every socket recorded. */
function recordingIo() {
  const emitted = [];
  const wrapped = (url, opts) => {
    const socket = io(url, opts);
    const emit = socket.emit;
    socket.emit = function (name, ...args) {
      if (!['connect', 'disconnect'].includes(name)) emitted.push({ name, payload: args[0] });
      return emit.call(this, name, ...args);
    };
    return socket;
  };
  wrapped.emitted = emitted;
  wrapped.Socket = io.Socket; // the client picks its transport by the io() it is given
  return wrapped;
}

/** Helpers that wait for one thing on a client and fail with what it saw instead. */
function waitState(js, state, ms = WAIT) {
  return waitUntil(() => js.connection.state === state, ms,
    () => `state ${state}, is ${js.connection.state} (${JSON.stringify(js.connection.reason)})`);
}
function once(target, event, ms = WAIT) {
  return withTimeout(new Promise((resolve) => {
    const fn = (data, meta) => { target.unbind(event, fn); resolve([data, meta]); };
    target.bind(event, fn);
  }), ms, `${event}`);
}
async function subscribed(js, name) {
  const ch = js.subscribe(name);
  if (ch.subscribed) return ch;
  const res = await Promise.race([
    once(ch, 'jetsocket:subscription_succeeded').then(() => null),
    once(ch, 'jetsocket:subscription_error').then(([e]) => e),
  ]);
  assert.equal(res, null, `subscribe ${name}: ${JSON.stringify(res)}`);
  return ch;
}
async function subscribeError(js, name) {
  const ch = js.subscribe(name);
  const [err] = await once(ch, 'jetsocket:subscription_error');
  return err;
}

describe('JS client against the real server', { timeout: 120_000 }, () => {
  let srv;
  let pusher;
  let backend; // the app backend: channel authorization and user authentication endpoints
  const clients = [];
  const mintFor = (sub, extra = {}) => () => signJwt(claims(userClaims(sub, extra)));
  function client(sub, extra = {}, opts = {}) {
    const js = new Jetsocket(APP.key, { host: srv.url, token: mintFor(sub, extra), io, nacl, retryMinMs: 100, retryMaxMs: 500, ...opts });
    clients.push(js);
    return js;
  }

  before(async () => {
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 }));
    pusher = sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
    backend = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        const form = Object.fromEntries(new URLSearchParams(body));
        backend.requests.push({ path: req.url, type: req.headers['content-type'], auth: req.headers.authorization, form });
        let answer;
        if (req.headers.authorization !== 'Bearer app-session') answer = null;
        else if (req.url === '/jetsocket/auth' && form.channel_name.startsWith('presence-')) {
          answer = pusher.authorizeChannel(form.socket_id, form.channel_name, { user_id: 'crm-42', user_info: { name: 'Eve' } });
        } else if (req.url === '/jetsocket/auth') answer = pusher.authorizeChannel(form.socket_id, form.channel_name);
        else if (req.url === '/jetsocket/user-auth') answer = pusher.authenticateUser(form.socket_id, { id: 'crm-9' });
        res.writeHead(answer ? 200 : 403, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer ?? { error: 'forbidden' }));
      });
    });
    backend.requests = [];
    await new Promise((r) => backend.listen(0, '127.0.0.1', r));
    backend.url = `http://127.0.0.1:${backend.address().port}`;
  });
  after(async () => {
    for (const js of clients) js.disconnect();
    backend?.close();
    await srv?.stop();
  });

  test('connects: states, socket_id, ping, transport; disconnect()', async () => {
    const js = client('js-1', {}, { autoConnect: false });
    const states = [];
    js.connection.bind('state_change', ({ previous, current }) => states.push(`${previous}>${current}`));
    assert.equal(js.connection.state, 'initialized');
    js.connect();
    await waitState(js, 'connected');
    assert.match(js.connection.socket_id, /^\d+\.\d+$/);
    assert.equal(js.connection.user_id, 'js-1');
    assert.equal((await js.connection.ping()).pong, true);
    assert.match(js.connection.transportName(), /^(polling|websocket)$/);
    js.disconnect();
    assert.deepEqual(states, ['initialized>connecting', 'connecting>connected', 'connected>disconnected']);
    assert.equal(js.connection.socket_id, null);
  });

  test('public, private and presence channels: events with metadata, client events, members, errors', async () => {
    const a = client('js-a', { groups: ['team'] });
    const b = client('js-b', { groups: ['team'] });
    const everything = [];
    a.bind_global((event, data, meta) => everything.push({ event, data, meta }));
    const pub = await subscribed(a, 'js-news');
    assert.ok(everything.some((e) => e.event === 'jetsocket:connection_established' && e.data.user_id === 'js-a'), 'bind_global sees the connection\'s own events');
    const got = once(pub, 'headline');
    const global = once(a, 'headline');
    await ok(pusher.trigger('js-news', 'headline', { text: 'hello' }), 'trigger');
    assert.deepEqual(await got, [{ text: 'hello' }, { channel: 'js-news' }]);
    assert.deepEqual(await global, [{ text: 'hello' }, { channel: 'js-news' }], 'client-level bind sees every channel');
    assert.deepEqual(everything.at(-1), { event: 'headline', data: { text: 'hello' }, meta: { channel: 'js-news' } });

    // unbind: a callback removed gets nothing more.
    const unbound = [];
    const cb = (d) => unbound.push(d);
    pub.bind('headline', cb);
    pub.unbind('headline', cb);
    const next = once(pub, 'headline');
    await ok(pusher.trigger('js-news', 'headline', { text: 'again' }), 'trigger again');
    await next;
    assert.deepEqual(unbound, []);

    // Refusals arrive on the channel as {status, code, error}.
    const denied = await subscribeError(b, 'private-group-other');
    assert.deepEqual([denied.status, denied.code, typeof denied.error], [403, 'forbidden', 'string']);
    const bad = await subscribeError(b, 'bad name!');
    assert.deepEqual([bad.status, bad.code], [400, 'invalid_channel']);

    // Client events between two clients, with the sender's user id.
    const pa = await subscribed(a, 'private-group-team');
    const pb = await subscribed(b, 'private-group-team');
    const typing = once(pb, 'client-typing');
    assert.equal((await pa.trigger('client-typing', { on: true })).ok, true);
    assert.deepEqual(await typing, [{ on: true }, { channel: 'private-group-team', user_id: 'js-a' }]);
    assert.throws(() => pub.trigger('client-typing', {}), /private- or presence-/);

    // Presence: members kept in step.
    const la = await subscribed(a, 'presence-js-lobby');
    assert.equal(la.members.count, 1);
    assert.deepEqual(la.members.me, { id: 'js-a', info: { name: 'User js-a' } });
    const added = once(la, 'jetsocket:member_added');
    const lb = await subscribed(b, 'presence-js-lobby');
    assert.deepEqual((await added)[0], { id: 'js-b', info: { name: 'User js-b' } });
    assert.equal(lb.members.count, 2);
    assert.deepEqual(lb.members.get('js-a'), { id: 'js-a', info: { name: 'User js-a' } });
    const ids = [];
    lb.members.each((m) => ids.push(m.id));
    assert.deepEqual(ids.sort(), ['js-a', 'js-b']);
    const removed = once(la, 'jetsocket:member_removed');
    b.unsubscribe('presence-js-lobby');
    assert.deepEqual((await removed)[0], { id: 'js-b', info: { name: 'User js-b' } });
    assert.equal(la.members.count, 1);
    assert.equal(b.channel('presence-js-lobby'), undefined);
    assert.deepEqual(a.allChannels().map((c) => c.name).sort(), ['js-news', 'presence-js-lobby', 'private-group-team']);
  });

  test('encrypted channel: decrypted before callbacks; a wrong key fires decryption_error and one re-subscribe; client events throw', async () => {
    const rio = recordingIo();
    const js = client('7', { permissions: ['encrypted-channels'] }, { io: rio });
    const ch = await subscribed(js, 'private-encrypted-user-7');
    const got = once(ch, 'secret');
    await ok(pusher.trigger('private-encrypted-user-7', 'secret', { text: 'caf\u00e9', n: 1 }), 'encrypted trigger');
    assert.deepEqual(await got, [{ text: 'caf\u00e9', n: 1 }, { channel: 'private-encrypted-user-7' }]);
    assert.throws(() => ch.trigger('client-x', {}), /encrypted/);

    // A payload sealed with another key: reported, and the client asks once for a fresh key.
    const wrongKey = createHash('sha256').update(randomBytes(32)).digest();
    const nonce = randomBytes(24);
    const box = nacl.secretbox(new Uint8Array(Buffer.from('{"x":1}')), new Uint8Array(nonce), new Uint8Array(wrongKey));
    const sealed = { nonce: nonce.toString('base64'), ciphertext: Buffer.from(box).toString('base64') };
    const subscribes = () => rio.emitted.filter((e) => e.name === 'jetsocket:subscribe').length;
    assert.equal(subscribes(), 1);
    const failed = once(ch, 'jetsocket:decryption_error');
    await ok(pusher.post({ path: '/events', body: { name: 'secret', channel: 'private-encrypted-user-7', data: JSON.stringify(sealed) } }), 'wrong key');
    assert.equal((await failed)[0].event, 'secret');
    await waitUntil(() => subscribes() === 2, WAIT, 're-subscribe for a fresh key');
    await waitUntil(() => ch.subscribed && !ch.subscriptionPending, WAIT, 'subscribed again');
    // The channel still works with the key from the new ack.
    const after = once(ch, 'secret');
    await ok(pusher.trigger('private-encrypted-user-7', 'secret', { n: 2 }), 'encrypted trigger again');
    assert.deepEqual((await after)[0], { n: 2 });
    assert.equal(subscribes(), 2);

    // Without the permission: 403 on the channel.
    const other = client('8');
    const denied = await subscribeError(other, 'private-encrypted-user-8');
    assert.equal(denied.status, 403);
  });

  test('channelAuthorization and userAuthentication: the app backend signs private, presence and encrypted channels and signs the user in', async () => {
    const conf = { endpoint: `${backend.url}/jetsocket/auth`, headers: { Authorization: 'Bearer app-session' } };
    const js = client('js-del', {}, {
      channelAuthorization: conf,
      userAuthentication: { endpoint: `${backend.url}/jetsocket/user-auth`, headers: { Authorization: 'Bearer app-session' } },
    });
    await subscribed(js, 'private-vip'); // no claim rule allows it
    const req = backend.requests.find((r) => r.form.channel_name === 'private-vip');
    assert.equal(req.type, 'application/x-www-form-urlencoded');
    assert.deepEqual(Object.keys(req.form).sort(), ['channel_name', 'socket_id']);
    assert.equal(req.form.socket_id, js.connection.socket_id);

    const p = await subscribed(js, 'presence-crm');
    assert.equal(p.members.me.id, 'crm-42', 'me is channel_data\'s user');
    assert.deepEqual(p.members.me.info, { name: 'Eve' });

    const enc = await subscribed(js, 'private-encrypted-vip');
    const got = once(enc, 'secret');
    await ok(pusher.trigger('private-encrypted-vip', 'secret', { ok: 1 }), 'encrypted trigger');
    assert.deepEqual((await got)[0], { ok: 1 });

    assert.deepEqual(await js.signin(), { ok: true, user_id: 'crm-9' });
    const note = once(js, 'note');
    await ok(pusher.sendToUser('crm-9', 'note', { text: 'for crm-9' }), 'sendToUser');
    assert.deepEqual((await note)[0], { text: 'for crm-9' });

    // The endpoint refusing: subscription_error with its status; nothing granted.
    const refused = client('js-del2', {}, { channelAuthorization: { endpoint: `${backend.url}/jetsocket/auth` } });
    const err = await subscribeError(refused, 'private-vip');
    assert.deepEqual([err.type, err.status], ['AuthError', 403]);
  });

  test('terminate_connections: jetsocket:terminated, then disconnected, and it stays so (no reconnect)', async () => {
    const js = client('js-term');
    const states = [];
    js.connection.bind('state_change', ({ current }) => states.push(current));
    await waitState(js, 'connected');
    const told = once(js, 'jetsocket:terminated');
    await ok(pusher.terminateUserConnections('js-term'), 'terminate');
    const [payload] = await told;
    assert.equal(payload.code, 'terminated');
    await waitState(js, 'disconnected');
    assert.equal(js.connection.reason.type, 'TerminatedError');
    // Retries here are 100 to 500 ms apart: a reconnect would have come by now.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(js.connection.state, 'disconnected', `states ${states}`);
    assert.ok(!states.includes('connecting') || states.lastIndexOf('connecting') < states.indexOf('disconnected'), `states ${states}`);
  });

  test('a refused token: the function is asked once more, then failed with the reason', async () => {
    let calls = 0;
    const js = client('x', {}, { token: () => { calls++; return signJwt(claims({ exp: nowSeconds() - 3600 })); } });
    const failed = once(js.connection, 'failed');
    await waitState(js, 'failed');
    assert.equal(calls, 2);
    assert.equal((await failed)[0].status, 401);
    assert.equal(js.connection.reason.status, 401);
  });
});

/**
 * startOnPort starts the binary on a given port (startServer picks a free one; its url
 * and port are corrected here) and waits for /healthz.
 */
async function startOnPort(port, env) {
  const s = await startServer({ ...env, ADDR: `127.0.0.1:${port}` }, { waitReady: false });
  Object.assign(s, { port, url: `http://127.0.0.1:${port}` });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (await fetch(`${s.url}/healthz`).then((r) => r.ok, () => false)) return s;
    if (s.proc.exitCode !== null || Date.now() > deadline) {
      await s.stop();
      throw new Error(`restarted server not ready:\n${s.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('JS client: token lifetime and server restarts', { timeout: 120_000 }, () => {
  let srv;
  const clients = [];
  after(async () => {
    for (const js of clients) js.disconnect();
    await srv?.stop();
  });

  test('before the token expires a fresh one goes out with jetsocket:refresh and the connection stays', async () => {
    srv = await startServer(appEnv({ JWT_LEEWAY: '0s' }));
    let calls = 0;
    const token = () => { calls++; return signJwt(claims(userClaims('ttl-1', { exp: nowSeconds() + 8 }))); };
    const js = new Jetsocket(APP.key, { host: srv.url, token, io, retryMinMs: 100 });
    clients.push(js);
    const expired = [];
    js.bind('jetsocket:token_expired', (d) => expired.push(d));
    await waitState(js, 'connected');
    const socketId = js.connection.socket_id;
    const firstExp = Date.now() + 8000;
    await once(js.connection, 'token_refreshed', 10_000);
    assert.equal(calls, 2);
    // Past the first token's expiry (no leeway): still the same connection.
    await waitUntil(() => Date.now() > firstExp + 1000, 15_000, 'first token expired');
    assert.equal((await js.connection.ping()).pong, true);
    assert.equal(js.connection.socket_id, socketId, 'never reconnected');
    assert.deepEqual(expired, []);
    js.disconnect();
    await srv.stop();
  });

  test('after a server restart: reconnect with a fresh token (the first one expired meanwhile) and every channel re-subscribed', async () => {
    const env = appEnv({ JWT_LEEWAY: '0s' });
    srv = await startServer(env);
    const port = srv.port;
    const tokens = [];
    // Four-second tokens: the first one is dead when the server comes back.
    const token = () => { const t = signJwt(claims(userClaims('rs-1', { exp: nowSeconds() + 4 }))); tokens.push(t); return t; };
    const js = new Jetsocket(APP.key, { host: srv.url, token, io, retryMinMs: 200, retryMaxMs: 1000 });
    clients.push(js);
    await waitState(js, 'connected');
    const first = js.connection.socket_id;
    const news = await subscribed(js, 'rs-news');
    const lobby = await subscribed(js, 'presence-rs');
    const states = [];
    js.connection.bind('state_change', ({ current }) => states.push(current));
    const errors = [];
    js.connection.bind('error', (e) => errors.push(e));

    await srv.stop();
    await waitUntil(() => js.connection.state !== 'connected', WAIT, 'noticed the server went away');
    // Every token the client had (the first and any refreshed one) expires while the server is down.
    const expOf = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url')).exp;
    const lastExp = Math.max(...tokens.map(expOf));
    await waitUntil(() => Date.now() / 1000 > lastExp + 1, 10_000, 'the tokens held before the restart expired');
    srv = await startOnPort(port, env);
    // The first token is refused now: a client that kept it could not come back.
    const refusedErr = await expectRefused(srv.url, tokens[0]);
    assert.equal(refusalStatus(refusedErr), 401);

    await waitState(js, 'connected', 20_000);
    assert.notEqual(js.connection.socket_id, first);
    assert.ok(tokens.length >= 2, 'the token function was called for the reconnect');
    assert.ok(!states.includes('failed'), `states ${states}`);
    assert.deepEqual(errors.filter((e) => e.status === 401), [], 'no handshake with an old token was tried');
    await waitUntil(() => news.subscribed && lobby.subscribed, WAIT, 're-subscribed');
    assert.equal(lobby.members.count, 1);
    const got = once(news, 'after-restart');
    await ok(sdk(srv).trigger('rs-news', 'after-restart', { back: true }), 'trigger after restart');
    assert.deepEqual((await got)[0], { back: true });
  });
});

describe('JS client: history and recovery', { timeout: 120_000 }, () => {
  let srv;
  let pusher;
  const clients = [];
  function client(sub, extra = {}, opts = {}) {
    const js = new Jetsocket(APP.key, { token: () => signJwt(claims(userClaims(sub, extra))), io, nacl, retryMinMs: 100, retryMaxMs: 500, ...opts });
    clients.push(js);
    return js;
  }
  before(async () => {
    srv = await startServer(appEnv({ HISTORY_SIZE: '100', HISTORY_TTL: '2m' }));
    pusher = sdk(srv);
  });
  after(async () => {
    for (const js of clients) js.disconnect();
    await srv?.stop();
  });

  // PRODUCT.md §14: a client cut off for a few seconds gets every publication it missed
  // after it reconnects, in order, none twice (its re-subscribe sends `since`).
  test('cut off by a TCP proxy while 100 events go out: all 100 after the reconnect, in order, none twice, then jetsocket:recovery', async () => {
    const proxy = await startProxy(srv.url);
    try {
      const js = client('js-rec', {}, { host: proxy.url });
      const ch = await subscribed(js, 'js-recover');
      const got = [];
      const recoveries = [];
      ch.bind('n', (d, meta) => got.push({ n: d.n, offset: meta.offset, epoch: meta.epoch }));
      ch.bind('jetsocket:recovery', (r) => recoveries.push(r));
      const send = async (from, to) => {
        for (let n = from; n <= to; n++) await ok(pusher.trigger('js-recover', 'n', { n }), `trigger ${n}`);
      };
      await send(1, 30);
      await waitUntil(() => got.length === 30, WAIT, () => `30 before the cut, got ${got.length}`);

      proxy.cut();
      await waitUntil(() => js.connection.state !== 'connected', WAIT, 'the client saw the cut');
      for (let n = 31; n <= 70; n++) {
        await send(n, n);
        await new Promise((r) => setTimeout(r, 40)); // about 2 s cut off
      }
      proxy.restore();
      await send(71, 100); // while the client reconnects and recovers

      await waitUntil(() => got.length >= 100 && recoveries.length > 0, 20_000,
        () => `100 events and a recovery, got ${got.length} (${got.at(-1)?.n}), recoveries ${JSON.stringify(recoveries)}`);
      await new Promise((r) => setTimeout(r, 200)); // a copy that came late would show now
      assert.deepEqual(got.map((e) => e.n), Array.from({ length: 100 }, (_, i) => i + 1), 'all of them, in order, none twice');
      assert.deepEqual(got.map((e) => e.offset), got.map((e, i) => got[0].offset + i), 'offsets count up by one');
      assert.ok(got.every((e) => typeof e.epoch === 'string' && e.epoch === got[0].epoch), 'one epoch');
      assert.equal(recoveries[0].recovered, true);
      assert.ok(recoveries[0].replayed > 0 && recoveries[0].replayed <= 70, `replayed ${recoveries[0].replayed}`);
      assert.equal(recoveries.length, 1, 'one reconnect, one recovery');
      js.disconnect();
    } finally {
      await proxy.close();
    }
  });

  // PRODUCT.md §3, §4: a trigger's socket_id and a client event's sender are not sent
  // the publication, live or replayed; the sender's client is told its position (the
  // client event's ack, jetsocket:skip for the trigger), so that it sees no gap and does
  // not re-subscribe for each of its own messages.
  test('own messages (trigger with socket_id, client events): never received, no re-subscribe, not after a reconnect either', async () => {
    const proxy = await startProxy(srv.url);
    try {
      const rec = recordingIo();
      const me = client('js-self', { groups: ['selfie'] }, { host: proxy.url, io: rec });
      const other = client('js-other', { groups: ['selfie'] }, { host: srv.url });
      const name = 'private-group-selfie';
      const mine = await subscribed(me, name);
      const theirs = await subscribed(other, name);
      const own = [];
      const seen = [];
      const recoveries = [];
      for (const ev of ['api', 'client-msg', 'other']) {
        mine.bind(ev, (d, m) => own.push({ ev, ...d, offset: m.offset }));
        theirs.bind(ev, (d, m) => seen.push({ ev, ...d, offset: m.offset }));
      }
      mine.bind('jetsocket:recovery', (r) => recoveries.push(r));
      const subscribes = () => rec.emitted.filter((e) => e.name === 'jetsocket:subscribe' && e.payload.channel === name).length;
      const sendOwn = async (from, to) => {
        for (let i = from; i <= to; i++) {
          await ok(pusher.trigger(name, 'api', { i, own: true }, { socket_id: me.connection.socket_id }), `trigger ${i}`);
          assert.equal((await mine.trigger('client-msg', { i, own: true })).ok, true);
          await new Promise((r) => setTimeout(r, 110)); // under CLIENT_EVENT_RATE (10/s)
        }
      };
      const caughtUp = (n) => waitUntil(() => seen.length === n && mine.position?.offset === seen.at(-1).offset, WAIT,
        () => `the other got ${seen.length}/${n}, my position ${JSON.stringify(mine.position)} vs ${seen.at(-1)?.offset}`);

      await sendOwn(1, 20);
      await caughtUp(40);
      assert.deepEqual(own, [], 'the sender never gets its own');
      assert.equal(subscribes(), 1, 'no re-subscribe for its own messages');

      // Cut off while someone else publishes; back on a new connection, it gets those
      // and none of its own.
      proxy.cut();
      await waitUntil(() => me.connection.state !== 'connected', WAIT, 'the client saw the cut');
      for (let n = 1; n <= 3; n++) await ok(pusher.trigger(name, 'other', { n }), `other ${n}`);
      proxy.restore();
      await waitUntil(() => recoveries.length > 0 && own.length === 3, 20_000,
        () => `a recovery with 3 events, got ${JSON.stringify(own)} ${JSON.stringify(recoveries)}`);
      assert.deepEqual(recoveries, [{ recovered: true, replayed: 3 }]);
      await sendOwn(21, 25);
      await caughtUp(53);
      assert.deepEqual(own.map((e) => e.ev), ['other', 'other', 'other'], 'never its own, after the reconnect either');
      assert.equal(subscribes(), 2, 'one re-subscribe: the reconnect');
      assert.equal(seen.filter((e) => e.own).length, 50, 'the other client got every one of them');
    } finally {
      await proxy.close();
    }
  });

  test('history no longer covers the gap: jetsocket:recovery {recovered: false} and nothing replayed', async () => {
    const proxy = await startProxy(srv.url);
    try {
      const js = client('js-rec2', {}, { host: proxy.url });
      const ch = await subscribed(js, 'js-overflow');
      const got = [];
      const recoveries = [];
      ch.bind('n', (d) => got.push(d.n));
      ch.bind('jetsocket:recovery', (r) => recoveries.push(r));
      await ok(pusher.trigger('js-overflow', 'n', { n: 0 }), 'trigger');
      await waitUntil(() => got.length === 1, WAIT, 'the first event');
      proxy.cut();
      await waitUntil(() => js.connection.state !== 'connected', WAIT, 'the client saw the cut');
      // More than HISTORY_SIZE (100) while cut off: the oldest missed ones are trimmed.
      for (let n = 1; n <= 105; n++) await ok(pusher.trigger('js-overflow', 'n', { n }), `trigger ${n}`);
      proxy.restore();
      await waitUntil(() => recoveries.length > 0, 20_000, 'a recovery event');
      assert.deepEqual(recoveries[0], { recovered: false, replayed: 0 });
      assert.deepEqual(got, [0], 'no partial replay');
      await ok(pusher.trigger('js-overflow', 'n', { n: 106 }), 'trigger after');
      await waitUntil(() => got.length === 2, WAIT, 'live delivery goes on');
      assert.deepEqual(got, [0, 106]);
      js.disconnect();
    } finally {
      await proxy.close();
    }
  });
});
