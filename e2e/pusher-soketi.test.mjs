// Soketi's test suite (tests/ws, public, private, presence, encrypted-private .test.ts),
// the cases that apply, ported to this server: pusher-js clients whose channel
// authorization is an app backend signing with the `pusher` SDK (Soketi's
// newClientForPresenceUser), against the Pusher endpoint. Where Soketi answers a limit
// with a Pusher close code as the status (4009, 4100, 4301), this server answers with the
// HTTP status its socket.io side uses (400, 429), as docs/pusher.md says.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients, sleep } from './helpers/clients.mjs';
import { MASTER_KEY_B64, appEnv, sdk } from './helpers/pusher.mjs';
import { pusherJs, connected, subscribed, subscriptionError, nextEvent, RawPusher } from './helpers/pusherjs.mjs';

let n = 0;
const randomChannel = () => `ch${Date.now()}x${n++}`;

describe('soketi cases on /app/{key}', () => {
  let srv;
  let api;
  const clients = new Clients();
  before(async () => {
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64, PRESENCE_MAX_MEMBERS: '2' }));
    api = sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  // A pusher-js client whose app backend signs (or, with `wrong`, signs with another secret).
  const client = ({ user, wrong = false } = {}) => pusherJs(srv, {
    clients,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        const signer = wrong ? sdk(srv, { secret: 'not-the-app-secret-0123456789', encryptionMasterKeyBase64: MASTER_KEY_B64 }) : api;
        cb(null, signer.authorizeChannel(socketId, channelName, channelName.startsWith('presence-') ? user : undefined));
      },
    },
  });
  const occupied = async (name) => (await (await api.get({ path: `/channels/${name}` })).json()).occupied;
  const waitVacated = async (name) => {
    for (let i = 0; await occupied(name); i++) {
      assert.ok(i < 250, `${name} vacated`);
      await sleep(40);
    }
  };
  const john = { user_id: 1, user_info: { id: 1, name: 'John' } };
  const alice = { user_id: 2, user_info: { id: 2, name: 'Alice' } };

  test('ws: should check for channel name length', async () => {
    const p = client();
    const err = await subscriptionError(p, 'a'.repeat(165));
    assert.equal(err.type, 'InvalidChannel');
    assert.equal(err.status, 400);
    assert.ok(err.error);
  });

  test('ws: should check for presence member size', async () => {
    const p = client({ user: { user_id: 1, user_info: { bio: 'x'.repeat(2000) } } });
    const err = await subscriptionError(p, `presence-${randomChannel()}`);
    assert.equal(err.type, 'InvalidRequest');
    assert.equal(err.status, 400);
  });

  test('ws: should check for presence max members per channel', async () => {
    const name = `presence-${randomChannel()}`;
    await subscribed(client({ user: john }), name);
    await subscribed(client({ user: alice }), name);
    const err = await subscriptionError(client({ user: { user_id: 3 } }), name);
    assert.equal(err.type, 'LimitReached');
    assert.equal(err.status, 429);
  });

  for (const [kind, prefix] of [['public', ''], ['private', 'private-'], ['presence', 'presence-'], ['encrypted', 'private-encrypted-']]) {
    test(`${kind}: connects, receives a trigger, and leaves no trace on disconnect`, async () => {
      const p = client({ user: john });
      const name = `${prefix}${randomChannel()}`;
      const { ch } = await subscribed(p, name);
      const got = nextEvent(ch, 'greeting');
      await api.trigger(name, 'greeting', { message: 'hello' });
      assert.deepEqual((await got).data, { message: 'hello' });
      assert.equal(await occupied(name), true);
      p.disconnect();
      await waitVacated(name);
    });

    test(`${kind}: a sudden close leaves no trace`, async () => {
      // A raw protocol client whose TCP connection drops: no unsubscribe, no close frame.
      const raw = clients.add(new RawPusher(srv));
      const { socket_id: sid } = await raw.established();
      const name = `${prefix}${randomChannel()}`;
      const auth = prefix ? api.authorizeChannel(sid, name, prefix === 'presence-' ? john : undefined) : {};
      raw.send({ event: 'pusher:subscribe', data: { channel: name, ...auth } });
      await raw.event('pusher_internal:subscription_succeeded', name);
      assert.equal(await occupied(name), true);
      raw.ws.terminate();
      await waitVacated(name);
    });

    if (prefix) {
      test(`${kind}: cannot connect with wrong authentication`, async () => {
        const err = await subscriptionError(client({ user: john, wrong: true }), `${prefix}${randomChannel()}`);
        assert.equal(err.type, 'AuthError');
        assert.equal(err.status, 403);
      });
    }
  }

  test('presence: handles joins and leaves', async () => {
    const name = `presence-${randomChannel()}`;
    const { ch: jc } = await subscribed(client({ user: john }), name);
    const added = nextEvent(jc, 'pusher:member_added');
    const a = client({ user: alice });
    const { ch: ac } = await subscribed(a, name);
    assert.equal(ac.members.count, 2);
    assert.deepEqual((await added).data, { id: '2', info: { id: 2, name: 'Alice' } });
    const removed = nextEvent(jc, 'pusher:member_removed');
    a.disconnect();
    assert.equal((await removed).data.id, '2');
  });

  test('presence: the same user twice does not trigger member_added twice', async () => {
    const name = `presence-${randomChannel()}`;
    const j1 = client({ user: john });
    await subscribed(j1, name);
    const a = client({ user: alice });
    const { ch: ac } = await subscribed(a, name);
    const addedSeen = [];
    ac.bind('pusher:member_added', (m) => addedSeen.push(m));
    const removed = nextEvent(ac, 'pusher:member_removed');
    const j2 = client({ user: john });
    const { data } = await subscribed(j2, name);
    assert.equal(data.count, 2);
    j2.disconnect();
    j1.disconnect();
    assert.equal((await removed).data.id, '1');
    assert.deepEqual(addedSeen, []);
    const users = await (await api.get({ path: `/channels/${name}/users` })).json();
    assert.deepEqual(users.users, [{ id: '2' }]);
  });

  test('ws: a socket.io-style connection count: connects and disconnects many clients without leaking', async () => {
    const metric = async () => Number((await (await fetch(`${srv.url}/metrics`)).text()).match(/^jetsocket_connections (\d+)/m)[1]);
    clients.closeAll();
    for (let i = 0; (await metric()) !== 0; i++) {
      assert.ok(i < 250, 'earlier connections gone');
      await sleep(40);
    }
    const ps = Array.from({ length: 20 }, () => client({ user: john }));
    await Promise.all(ps.map((p) => connected(p)));
    assert.equal(await metric(), 20);
    for (const p of ps) p.disconnect();
    for (let i = 0; (await metric()) !== 0; i++) {
      assert.ok(i < 250, 'all gone');
      await sleep(40);
    }
  });
});
