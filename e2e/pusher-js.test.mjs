// The Pusher protocol endpoint (PRODUCT §15) driven by pusher-js 8.x from npm, unmodified,
// in Node: connecting, public/private/presence/encrypted channels, triggers from the
// `pusher` SDK, client events and presence shared with socket.io clients, sign-in,
// sendToUser and terminate_connections, and the server as pusher-js's auth endpoint.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients, request, sleep } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import { APP, MASTER_KEY_B64, appEnv, sdk } from './helpers/pusher.mjs';
import {
  join, subscribeOk, record, waitForMatch, clientEvent, userClaims, MEMBER_ADDED, MEMBER_REMOVED,
} from './helpers/channels.mjs';
import { Pusher, pusherJs, connected, subscribed, subscriptionError, nextEvent, RawPusher } from './helpers/pusherjs.mjs';

const tokenFor = (sub, extra = {}) => mint(userClaims(sub, extra));

describe('pusher-js on /app/{key}', () => {
  let srv;
  let api;
  const clients = new Clients();
  before(async () => {
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64, ALLOWED_ORIGINS: '*' }));
    api = sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('connects: socket id in Pusher form, activity timeout from the server', async () => {
    const raw = clients.add(new RawPusher(srv));
    const est = await raw.established();
    assert.match(est.socket_id, /^\d+\.\d+$/);
    assert.equal(est.activity_timeout, 120);
    const p = pusherJs(srv, { clients });
    const id = await connected(p);
    assert.match(id, /^\d+\.\d+$/);
    assert.notEqual(id, est.socket_id);
  });

  test('public channel: a trigger from the pusher SDK arrives, JSON data parsed, plain strings kept', async () => {
    const p = pusherJs(srv, { clients });
    const { ch, data } = await subscribed(p, 'news');
    assert.deepEqual(data, {});
    let got = nextEvent(ch, 'story');
    await api.trigger('news', 'story', { title: 'hello', n: 1 });
    assert.deepEqual((await got).data, { title: 'hello', n: 1 });
    got = nextEvent(ch, 'plain');
    await api.trigger('news', 'plain', 'just text');
    assert.equal((await got).data, 'just text');
  });

  test('unsubscribe stops delivery', async () => {
    const p = pusherJs(srv, { clients });
    const { ch } = await subscribed(p, 'unsub-news');
    const seen = [];
    ch.bind('x', (d) => seen.push(d));
    p.unsubscribe('unsub-news');
    // The unsubscribe and a following subscribe of a marker channel go in order: once the
    // marker is subscribed the unsubscribe has been handled.
    await subscribed(p, 'unsub-marker');
    const info = await api.get({ path: '/channels/unsub-news', params: { info: 'subscription_count' } });
    assert.equal((await info.json()).occupied, false);
    await api.trigger('unsub-news', 'x', 1);
    await sleep(200);
    assert.deepEqual(seen, []);
  });

  test('socket_id excludes the sender from a trigger', async () => {
    const a = pusherJs(srv, { clients });
    const b = pusherJs(srv, { clients });
    const [{ ch: ca }, { ch: cb }] = await Promise.all([subscribed(a, 'excl'), subscribed(b, 'excl')]);
    const seenA = [];
    ca.bind('e', (d) => seenA.push(d));
    const gotB = nextEvent(cb, 'e');
    await api.trigger('excl', 'e', { n: 1 }, { socket_id: a.connection.socket_id });
    assert.deepEqual((await gotB).data, { n: 1 });
    await api.trigger('news-flush', 'e', 1);
    await sleep(100);
    assert.deepEqual(seenA, []);
  });

  test('private channel through /pusher/auth with a Bearer token; a denied one is a subscription_error', async () => {
    const p = pusherJs(srv, { token: tokenFor('u1'), clients });
    const { ch } = await subscribed(p, 'private-user-u1');
    const got = nextEvent(ch, 'secret');
    await api.trigger('private-user-u1', 'secret', { ok: true });
    assert.deepEqual((await got).data, { ok: true });
    const err = await subscriptionError(p, 'private-user-u2');
    assert.equal(err.type, 'AuthError');
    assert.equal(err.status, 403);
    assert.equal(p.connection.state, 'connected');
  });

  test('private channel without auth or with a forged one: subscription_error on that channel, connection stays open', async () => {
    const raw = clients.add(new RawPusher(srv));
    const { socket_id: sid } = await raw.established();
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-x' } });
    let e = await raw.event('pusher:subscription_error', 'private-x');
    assert.equal(e.data.type, 'AuthError');
    assert.equal(e.data.status, 401);
    assert.equal(typeof e.data.error, 'string');
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: `${APP.key}:${'0'.repeat(64)}` } });
    e = await raw.event('pusher:subscription_error', 'private-x');
    assert.equal(e.data.status, 403);
    // The app's own signature (the pusher SDK's authorizeChannel) is accepted.
    raw.send({ event: 'pusher:subscribe', data: { channel: 'private-x', ...api.authorizeChannel(sid, 'private-x') } });
    await raw.event('pusher_internal:subscription_succeeded', 'private-x');
    await raw.roundTrip();
  });

  test('presence: members in Pusher form, member_added and member_removed between pusher-js clients', async () => {
    const a = pusherJs(srv, { token: tokenFor('pa'), clients });
    const { ch: ca } = await subscribed(a, 'presence-pjs');
    assert.equal(ca.members.count, 1);
    assert.deepEqual(ca.members.me, { id: 'pa', info: { name: 'User pa' } });
    const added = nextEvent(ca, 'pusher:member_added');
    const b = pusherJs(srv, { token: tokenFor('pb'), clients });
    const { ch: cb } = await subscribed(b, 'presence-pjs');
    assert.equal(cb.members.count, 2);
    const ids = [];
    cb.members.each((m) => ids.push(m.id));
    assert.deepEqual(ids.sort(), ['pa', 'pb']);
    assert.deepEqual((await added).data, { id: 'pb', info: { name: 'User pb' } });
    const removed = nextEvent(ca, 'pusher:member_removed');
    b.disconnect();
    assert.deepEqual((await removed).data, { id: 'pb', info: { name: 'User pb' } });
    assert.equal(ca.members.count, 1);
  });

  test('presence is one list with socket.io clients: each side sees the other join and leave', async () => {
    const name = 'presence-mixed';
    const { socket: io } = await join(srv.url, clients, 'sio', {}, { transports: ['websocket'] });
    const addedIO = record(io, MEMBER_ADDED);
    const removedIO = record(io, MEMBER_REMOVED);
    await subscribeOk(io, name);
    const p = pusherJs(srv, { token: tokenFor('pjs'), clients });
    const { ch } = await subscribed(p, name);
    const ids = [];
    ch.members.each((m) => ids.push(m.id));
    assert.deepEqual(ids.sort(), ['pjs', 'sio']);
    assert.deepEqual(ch.members.get('sio').info, { name: 'User sio' });
    await waitForMatch(addedIO, (e) => e.user_id === 'pjs', 5000, 'socket.io sees pusher-js join');
    assert.deepEqual(addedIO.find((e) => e.user_id === 'pjs').user_info, { name: 'User pjs' });

    // A second socket.io user joining is seen by pusher-js.
    const added = nextEvent(ch, 'pusher:member_added');
    const { socket: io2 } = await join(srv.url, clients, 'sio2', {}, { transports: ['websocket'] });
    await subscribeOk(io2, name);
    assert.equal((await added).data.id, 'sio2');
    const removed = nextEvent(ch, 'pusher:member_removed');
    io2.close();
    assert.equal((await removed).data.id, 'sio2');

    p.disconnect();
    await waitForMatch(removedIO, (e) => e.user_id === 'pjs', 5000, 'socket.io sees pusher-js leave');
    const users = await (await api.get({ path: `/channels/${name}/users` })).json();
    assert.deepEqual(users.users.map((u) => u.id), ['sio']);
  });

  test('client events cross between pusher-js and socket.io, with user_id, never back to the sender', async () => {
    const name = 'presence-cross';
    const { socket: io } = await join(srv.url, clients, 'cio', {}, { transports: ['websocket'] });
    await subscribeOk(io, name);
    const p = pusherJs(srv, { token: tokenFor('cpj'), clients });
    const { ch } = await subscribed(p, name);

    const fromPusher = record(io, 'client-typing');
    const own = [];
    ch.bind('client-typing', (d) => own.push(d));
    ch.trigger('client-typing', { who: 'pusher-js' });
    await waitForMatch(fromPusher, () => true, 5000, 'socket.io gets the pusher-js client event');
    assert.deepEqual(fromPusher[0], { channel: name, data: { who: 'pusher-js' }, user_id: 'cpj' });

    const got = nextEvent(ch, 'client-typing');
    await clientEvent(io, 'client-typing', name, { who: 'socket.io' });
    const { data, metadata } = await got;
    assert.deepEqual(data, { who: 'socket.io' });
    assert.equal(metadata.user_id, 'cio');
    assert.deepEqual(own, [{ who: 'socket.io' }], 'pusher-js never gets its own client event');
  });

  test('client events on a public channel or an unsubscribed one are refused with pusher:error', async () => {
    const raw = clients.add(new RawPusher(srv));
    await raw.established();
    raw.send({ event: 'pusher:subscribe', data: { channel: 'pub-ce' } });
    await raw.event('pusher_internal:subscription_succeeded', 'pub-ce');
    raw.send({ event: 'client-x', channel: 'pub-ce', data: {} });
    let e = await raw.event('pusher:error');
    assert.match(e.data.message, /private- and presence-/);
    raw.send({ event: 'client-x', channel: 'private-not-mine', data: {} });
    e = await raw.event('pusher:error');
    assert.match(e.data.message, /subscribe/);
    await raw.roundTrip();
  });

  test('encrypted channel: pusher-js with encryption decrypts the pusher SDK\'s encrypted trigger', async () => {
    // In Node, pusher-js's main entry is its encryption build (PusherWithEncryption, with
    // tweetnacl); pusher-js/with-encryption is the same class for browsers.
    assert.equal(Pusher.name, 'PusherWithEncryption');
    const p = pusherJs(srv, { token: tokenFor('enc', { permissions: ['encrypted-channels'] }), clients });
    const { ch } = await subscribed(p, 'private-encrypted-vault');
    const got = nextEvent(ch, 'secret');
    await api.trigger('private-encrypted-vault', 'secret', { msg: 'top secret' });
    assert.deepEqual((await got).data, { msg: 'top secret' });
  });

  test('sign-in: signin_success, then sendToUser reaches it and terminate_connections closes it with 4009', async () => {
    const p = pusherJs(srv, { token: tokenFor('si1'), clients });
    await connected(p);
    const signedIn = new Promise((resolve) => p.user.bind('pusher:signin_success', resolve));
    p.signin();
    await p.user.signinDonePromise;
    assert.equal(p.user.user_data.id, 'si1');
    void signedIn;
    const got = new Promise((resolve) => p.user.bind('notice', resolve));
    // The user channel subscription is made before signin_success is sent.
    await api.sendToUser('si1', 'notice', { hi: 1 });
    assert.deepEqual(await got, { hi: 1 });
    const closed = new Promise((resolve) => p.connection.bind('error', resolve));
    await api.terminateUserConnections('si1');
    const err = await closed;
    assert.equal(err.data.code, 4009);
  });

  test('a forged sign-in is a pusher:error and the connection stays anonymous and open', async () => {
    const raw = clients.add(new RawPusher(srv));
    await raw.established();
    raw.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${'1'.repeat(64)}`, user_data: '{"id":"x"}' } });
    const e = await raw.event('pusher:error');
    assert.equal(e.data.code, 4304);
    await raw.roundTrip();
  });
});

describe('/pusher/auth and /pusher/user-auth', () => {
  let srv;
  before(async () => { srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 })); });
  after(async () => { await srv?.stop(); });
  const post = (path, body, token) => request(`${srv.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: new URLSearchParams(body).toString(),
  });

  test('answers what the pusher SDK would sign; presence gets channel_data, encrypted shared_secret', async () => {
    const api = sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
    let res = await post('/pusher/auth', { socket_id: '1.2', channel_name: 'private-user-a1' }, tokenFor('a1'));
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, api.authorizeChannel('1.2', 'private-user-a1'));
    res = await post('/pusher/auth', { socket_id: '1.2', channel_name: 'presence-room' }, tokenFor('a1'));
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.json.channel_data), { user_id: 'a1', user_info: { name: 'User a1' } });
    assert.equal(res.json.auth, api.authorizeChannel('1.2', 'presence-room', JSON.parse(res.json.channel_data)).auth);
    res = await post('/pusher/auth', { socket_id: '1.2', channel_name: 'private-encrypted-x' }, tokenFor('a1', { permissions: ['encrypted-channels'] }));
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, api.authorizeChannel('1.2', 'private-encrypted-x'));
    res = await post('/pusher/user-auth', { socket_id: '1.2' }, tokenFor('a1'));
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.json.user_data), { id: 'a1', user_info: { name: 'User a1' } });
    assert.deepEqual(res.json, api.authenticateUser('1.2', JSON.parse(res.json.user_data)));
  });

  test('refusals: no token 401, a rule that denies 403, bad socket id or channel 400', async () => {
    let res = await post('/pusher/auth', { socket_id: '1.2', channel_name: 'private-user-a1' });
    assert.equal(res.status, 401);
    assert.equal(res.json.error, 'invalid_token');
    res = await post('/pusher/auth', { socket_id: '1.2', channel_name: 'private-user-b2' }, tokenFor('a1'));
    assert.equal(res.status, 403);
    res = await post('/pusher/auth', { socket_id: '1.2', channel_name: 'private-encrypted-x' }, tokenFor('a1'));
    assert.equal(res.status, 403, 'encrypted channels need the permission');
    res = await post('/pusher/auth', { socket_id: 'abc', channel_name: 'private-user-a1' }, tokenFor('a1'));
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_socket_id');
    res = await post('/pusher/auth', { socket_id: '1.2', channel_name: 'bad name!' }, tokenFor('a1'));
    assert.equal(res.status, 400);
    res = await post('/pusher/auth', { socket_id: '1.2', channel_name: '#server-to-user-a1' }, tokenFor('a1'));
    assert.equal(res.status, 403);
    res = await post('/pusher/user-auth', { socket_id: '1.2' });
    assert.equal(res.status, 401);
  });
});

describe('subscription_count (SUBSCRIPTION_COUNT=true)', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv({ SUBSCRIPTION_COUNT: 'true' })); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('subscribers of either protocol get the count as it changes; presence channels do not', async () => {
    const p = pusherJs(srv, { clients });
    const { ch } = await subscribed(p, 'counted');
    assert.deepEqual((await nextEvent(ch, 'pusher:subscription_count')).data, { subscription_count: 1 });
    const { socket: io } = await join(srv.url, clients, 'counter', {}, { transports: ['websocket'] });
    const counts = record(io, 'jetsocket:subscription_count');
    const next = nextEvent(ch, 'pusher:subscription_count');
    await subscribeOk(io, 'counted');
    assert.deepEqual((await next).data, { subscription_count: 2 });
    assert.equal(ch.subscriptionCount, 2);
    await waitForMatch(counts, (c) => c.data.subscription_count === 2, 5000, 'socket.io gets the count');
    assert.equal(counts.at(-1).channel, 'counted');

    const down = nextEvent(ch, 'pusher:subscription_count');
    io.close();
    assert.deepEqual((await down).data, { subscription_count: 1 });

    const pres = pusherJs(srv, { token: tokenFor('pc'), clients });
    const { ch: pch } = await subscribed(pres, 'presence-counted');
    const seen = [];
    pch.bind('pusher:subscription_count', (d) => seen.push(d));
    await subscribed(pusherJs(srv, { token: tokenFor('pc2'), clients }), 'presence-counted');
    // A count for the public channel after the presence change is the barrier.
    const barrier = nextEvent(ch, 'pusher:subscription_count');
    await subscribed(pusherJs(srv, { clients }), 'counted');
    await barrier;
    assert.deepEqual(seen, []);
  });
});

describe('cache channels', () => {
  let srv;
  const clients = new Clients();
  // The last event is read from the channel's history (on by default; the e2e helper
  // turns it off unless asked).
  before(async () => { srv = await startServer(appEnv({ HISTORY_SIZE: '10' })); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('a new subscriber gets the last event at once, or pusher:cache_miss', async () => {
    const api = sdk(srv);
    await api.trigger('cache-prices', 'price', { v: 1 });
    await api.trigger('cache-prices', 'price', { v: 2 });
    const p = pusherJs(srv, { token: tokenFor('cache-u'), clients });
    const ch = p.subscribe('cache-prices');
    const got = nextEvent(ch, 'price');
    assert.deepEqual((await got).data, { v: 2 });

    const empty = p.subscribe('cache-empty');
    const miss = nextEvent(empty, 'pusher:cache_miss');
    await miss;

    await api.trigger('presence-cache-room', 'state', 'ready');
    const pc = p.subscribe('presence-cache-room');
    assert.equal((await nextEvent(pc, 'state')).data, 'ready');
    // An ordinary channel has neither.
    const plain = p.subscribe('prices');
    const seen = [];
    plain.bind_global((e) => seen.push(e));
    await new Promise((resolve) => plain.bind('pusher:subscription_succeeded', resolve));
    await subscribed(p, 'cache-barrier'); // its cache_miss is after anything for 'prices'
    assert.deepEqual(seen, ['pusher:subscription_succeeded']);
  });
});
