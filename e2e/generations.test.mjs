// Both client generations on one server (PRODUCT §4, issue 17): socket.io-client 2.x
// (Engine.IO v3, token in the query) and 4.x (Engine.IO v4, token in `auth` or the query)
// in one presence channel see each other join and leave, get each other's client events,
// and get the same triggered events. The other suites run once per major (CLIENT_MAJOR);
// this one mixes them in every run.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients } from './helpers/clients.mjs';
import {
  MEMBER_ADDED, MEMBER_REMOVED, join, subscribeOk, record, waitForMatch, flush, clientEvent,
} from './helpers/channels.mjs';
import { appEnv, sdk, ok } from './helpers/pusher.mjs';

const info = (sub) => ({ name: `User ${sub}` });

describe('socket.io-client 2.x and 4.x together', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv()); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('one presence channel: members, client events and triggers cross generations', async () => {
    const ch = 'presence-generations';
    // v2 on websocket; v4 with `auth` on the default path (polling, then upgrade); v4 with
    // the token in the query on websocket.
    const { socket: v2 } = await join(srv.url, clients, 'gen-v2', {}, { major: 2 });
    const { socket: v4 } = await join(srv.url, clients, 'gen-v4', {}, { major: 4, tokenIn: 'auth', transports: undefined });
    const { socket: v4q } = await join(srv.url, clients, 'gen-v4q', {}, { major: 4, tokenIn: 'query' });
    assert.equal(typeof v4.onAny, 'function', 'a 4.x socket (2.x sockets have no onAny)');
    assert.equal(typeof v4q.onAny, 'function', 'a 4.x socket');
    assert.equal(v2.onAny, undefined, 'a 2.x socket');
    const added = { v2: record(v2, MEMBER_ADDED), v4: record(v4, MEMBER_ADDED) };
    const removed = { v2: record(v2, MEMBER_REMOVED), v4: record(v4, MEMBER_REMOVED) };

    await subscribeOk(v2, ch);
    const ack4 = await subscribeOk(v4, ch);
    assert.deepEqual(ack4.presence, { count: 2, ids: ['gen-v2', 'gen-v4'], hash: { 'gen-v2': info('gen-v2'), 'gen-v4': info('gen-v4') } },
      'the v4 subscriber sees the v2 member');
    await waitForMatch(added.v2, (e) => e.user_id === 'gen-v4', 5000, 'member_added for the v4 client on the v2 client');
    const ackq = await subscribeOk(v4q, ch);
    assert.equal(ackq.presence.count, 3);
    await waitForMatch(added.v2, (e) => e.user_id === 'gen-v4q', 5000, 'member_added for gen-v4q on v2');
    await waitForMatch(added.v4, (e) => e.user_id === 'gen-v4q', 5000, 'member_added for gen-v4q on v4');

    // Client events, each way.
    const msgs = { v2: record(v2, 'client-hi'), v4: record(v4, 'client-hi'), v4q: record(v4q, 'client-hi') };
    assert.deepEqual(await clientEvent(v2, 'client-hi', ch, { from: 2 }), { ok: true });
    assert.deepEqual(await clientEvent(v4, 'client-hi', ch, { from: 4 }), { ok: true });
    const from2 = { channel: ch, data: { from: 2 }, user_id: 'gen-v2' };
    const from4 = { channel: ch, data: { from: 4 }, user_id: 'gen-v4' };
    assert.deepEqual(await waitForMatch(msgs.v4, (e) => e.user_id === 'gen-v2', 5000, 'v2 -> v4'), from2);
    assert.deepEqual(await waitForMatch(msgs.v2, (e) => e.user_id === 'gen-v4', 5000, 'v4 -> v2'), from4);
    await waitForMatch(msgs.v4q, (e) => e.user_id === 'gen-v2', 5000, 'v2 -> v4q');
    await waitForMatch(msgs.v4q, (e) => e.user_id === 'gen-v4', 5000, 'v4 -> v4q');
    await flush(v2, v4, v4q);
    assert.deepEqual(msgs.v2, [from4], 'the v2 sender does not get its own event');
    assert.deepEqual(msgs.v4, [from2], 'the v4 sender does not get its own event');

    // A trigger reaches every generation with the same payload.
    const news = { v2: record(v2, 'news'), v4: record(v4, 'news'), v4q: record(v4q, 'news') };
    await ok(sdk(srv).trigger(ch, 'news', { n: 1 }), 'trigger');
    for (const k of ['v2', 'v4', 'v4q']) {
      assert.deepEqual(await waitForMatch(news[k], () => true, 5000, `news on ${k}`), { channel: ch, data: { n: 1 } });
    }

    // Leaving: the others hear of it whatever their generation.
    v4q.close();
    await waitForMatch(removed.v2, (e) => e.user_id === 'gen-v4q', 5000, 'member_removed for gen-v4q on v2');
    await waitForMatch(removed.v4, (e) => e.user_id === 'gen-v4q', 5000, 'member_removed for gen-v4q on v4');
    v2.close();
    assert.deepEqual(await waitForMatch(removed.v4, (e) => e.user_id === 'gen-v2', 5000, 'member_removed for gen-v2 on v4'),
      { channel: ch, user_id: 'gen-v2' });
  });
});
