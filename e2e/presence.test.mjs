// Presence channels (PRODUCT §4): the member list in the ack, member_added/member_removed to
// the others, one member per user however many connections, leaving on unsubscribe and on
// disconnect, PRESENCE_MAX_MEMBERS and PRESENCE_INCLUDE_EMAIL.
//
// "Nothing else arrived" checks use flush() (a ping round-trip after the action was acked):
// on one node a frame queued for a connection before its ping is handled arrives before the pong.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients } from './helpers/clients.mjs';
import {
  MEMBER_ADDED, MEMBER_REMOVED, join, subscribeOk, subscribeFails, unsubscribe, record,
  waitForMatch, waitUntil, flush,
} from './helpers/channels.mjs';

const info = (sub) => ({ name: `User ${sub}` });

describe('presence channels', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({}); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('ack lists the members; the others get member_added {channel, user_id, user_info}; the joiner does not', async () => {
    const ch = 'presence-basic';
    const { socket: a } = await join(srv.url, clients, 'pa', { email: 'pa@example.test' });
    const { socket: b } = await join(srv.url, clients, 'pb', { email: 'pb@example.test' });
    const addedA = record(a, MEMBER_ADDED);
    const addedB = record(b, MEMBER_ADDED);

    const ackA = await subscribeOk(a, ch);
    assert.deepEqual(ackA.presence, { count: 1, ids: ['pa'], hash: { pa: info('pa') } }, 'no email without PRESENCE_INCLUDE_EMAIL');

    const ackB = await subscribeOk(b, ch);
    assert.deepEqual(ackB.presence, { count: 2, ids: ['pa', 'pb'], hash: { pa: info('pa'), pb: info('pb') } });

    await waitForMatch(addedA, (e) => e.user_id === 'pb', 5000, 'member_added for pb on a');
    await flush(a, b);
    assert.deepEqual(addedA, [{ channel: ch, user_id: 'pb', user_info: info('pb') }], 'exactly one member_added, no email');
    assert.deepEqual(addedB, [], 'the joiner gets no member_added (for itself or anyone)');
  });

  test('ids are sorted and user_info carries the name from the claims, whatever its characters', async () => {
    const ch = 'presence-sorted';
    const names = { zed: 'Zo\u00eb "Z" <b>&', alpha: 'Al \u{1F600}', mid: '' };
    for (const sub of ['zed', 'alpha', 'mid']) {
      const { socket } = await join(srv.url, clients, sub, { name: names[sub] });
      await subscribeOk(socket, ch);
    }
    const { socket: last } = await join(srv.url, clients, 'beta');
    const ack = await subscribeOk(last, ch);
    assert.deepEqual(ack.presence.ids, ['alpha', 'beta', 'mid', 'zed']);
    assert.equal(ack.presence.count, 4);
    assert.deepEqual(ack.presence.hash.zed, { name: names.zed });
    assert.deepEqual(ack.presence.hash.alpha, { name: names.alpha });
    assert.deepEqual(Object.keys(ack.presence.hash).sort(), ['alpha', 'beta', 'mid', 'zed']);
  });

  test('a user with two connections counts once; member_removed only when the last one leaves', async () => {
    const ch = 'presence-twice';
    const { socket: obs } = await join(srv.url, clients, 'obs');
    const added = record(obs, MEMBER_ADDED);
    const removed = record(obs, MEMBER_REMOVED);
    await subscribeOk(obs, ch);

    const { socket: u1 } = await join(srv.url, clients, 'dup');
    const { socket: u2 } = await join(srv.url, clients, 'dup');
    await subscribeOk(u1, ch);
    await waitForMatch(added, (e) => e.user_id === 'dup', 5000, 'member_added for dup');
    const ack2 = await subscribeOk(u2, ch);
    assert.deepEqual(ack2.presence, { count: 2, ids: ['dup', 'obs'], hash: { dup: info('dup'), obs: info('obs') } });
    await flush(obs);
    assert.equal(added.filter((e) => e.user_id === 'dup').length, 1, `second connection gives no member_added: ${JSON.stringify(added)}`);

    // First connection leaves by unsubscribing: the user is still there.
    await unsubscribe(u1, ch);
    await flush(obs);
    assert.deepEqual(removed, [], 'no member_removed while another connection of the user remains');
    const { socket: late } = await join(srv.url, clients, 'late');
    const lateAck = await subscribeOk(late, ch);
    assert.deepEqual(lateAck.presence.ids, ['dup', 'late', 'obs'], 'dup still a member');

    // Last connection leaves by disconnecting.
    u2.close();
    const ev = await waitForMatch(removed, (e) => e.user_id === 'dup', 5000, 'member_removed for dup');
    assert.deepEqual(ev, { channel: ch, user_id: 'dup' });
    await flush(obs);
    assert.equal(removed.filter((e) => e.user_id === 'dup').length, 1, 'exactly one member_removed');
  });

  test('the other order: the first connection disconnects, the second unsubscribes', async () => {
    const ch = 'presence-twice-2';
    const marker = 'presence-twice-2-marker';
    const { socket: obs } = await join(srv.url, clients, 'obs2');
    const removed = record(obs, MEMBER_REMOVED);
    await subscribeOk(obs, ch);
    await subscribeOk(obs, marker);
    const { socket: u1 } = await join(srv.url, clients, 'dup2');
    const { socket: u2 } = await join(srv.url, clients, 'dup2');
    await subscribeOk(u1, ch);
    await subscribeOk(u1, marker); // only u1 of dup2 is on the marker channel
    await subscribeOk(u2, ch);
    u1.close();
    // The marker's member_removed shows the server has handled u1's disconnect.
    await waitForMatch(removed, (e) => e.channel === marker, 5000, 'member_removed on the marker channel');
    await flush(obs);
    assert.deepEqual(removed, [{ channel: marker, user_id: 'dup2' }], 'no member_removed on the channel dup2 is still on');
    const { socket: probe } = await join(srv.url, clients, 'probe2');
    assert.deepEqual((await subscribeOk(probe, ch)).presence.ids, ['dup2', 'obs2', 'probe2'], 'dup2 still a member');
    await unsubscribe(u2, ch);
    assert.deepEqual(await waitForMatch(removed, (e) => e.channel === ch, 5000, 'member_removed for dup2'),
      { channel: ch, user_id: 'dup2' });
  });

  test('re-subscribing is harmless: ok again with the same members, no duplicate member_added; one unsubscribe leaves', async () => {
    const ch = 'presence-resub';
    const { socket: obs } = await join(srv.url, clients, 'rs-obs');
    const added = record(obs, MEMBER_ADDED);
    const removed = record(obs, MEMBER_REMOVED);
    await subscribeOk(obs, ch);
    const { socket: u } = await join(srv.url, clients, 'rs-user');
    const first = await subscribeOk(u, ch);
    const again = await subscribeOk(u, ch);
    const third = await subscribeOk(u, ch);
    assert.deepEqual(again.presence, first.presence);
    assert.deepEqual(third.presence, first.presence);
    assert.equal(first.presence.count, 2);
    await flush(obs);
    assert.equal(added.filter((e) => e.user_id === 'rs-user').length, 1, `one member_added: ${JSON.stringify(added)}`);
    await unsubscribe(u, ch);
    await waitForMatch(removed, (e) => e.user_id === 'rs-user', 5000, 'member_removed after one unsubscribe');
    const { socket: probe } = await join(srv.url, clients, 'rs-probe');
    assert.deepEqual((await subscribeOk(probe, ch)).presence.ids, ['rs-obs', 'rs-probe']);
  });

  test('leaving and coming back announces member_removed then member_added again', async () => {
    const ch = 'presence-back';
    const { socket: obs } = await join(srv.url, clients, 'bk-obs');
    const added = record(obs, MEMBER_ADDED);
    const removed = record(obs, MEMBER_REMOVED);
    await subscribeOk(obs, ch);
    const { socket: u } = await join(srv.url, clients, 'bk');
    await subscribeOk(u, ch);
    await unsubscribe(u, ch);
    await subscribeOk(u, ch);
    await waitUntil(() => added.length >= 2, 5000, () => `two member_added; got ${JSON.stringify(added)}`);
    await flush(obs);
    assert.deepEqual(added.map((e) => e.user_id), ['bk', 'bk']);
    assert.deepEqual(removed, [{ channel: ch, user_id: 'bk' }]);
  });

  test('disconnect leaves every channel: member_removed on each presence channel the user was on', async () => {
    const { socket: obsA } = await join(srv.url, clients, 'dc-a');
    const { socket: obsB } = await join(srv.url, clients, 'dc-b');
    const removedA = record(obsA, MEMBER_REMOVED);
    const removedB = record(obsB, MEMBER_REMOVED);
    await subscribeOk(obsA, 'presence-dc-1');
    await subscribeOk(obsB, 'presence-dc-2');
    const { socket: u } = await join(srv.url, clients, 'dc-user');
    await subscribeOk(u, 'presence-dc-1');
    await subscribeOk(u, 'presence-dc-2');
    await subscribeOk(u, 'private-user-dc-user');
    await subscribeOk(u, 'dc-public');
    u.close();
    assert.deepEqual(await waitForMatch(removedA, (e) => e.user_id === 'dc-user', 5000, 'member_removed on presence-dc-1'),
      { channel: 'presence-dc-1', user_id: 'dc-user' });
    assert.deepEqual(await waitForMatch(removedB, (e) => e.user_id === 'dc-user', 5000, 'member_removed on presence-dc-2'),
      { channel: 'presence-dc-2', user_id: 'dc-user' });
    const { socket: probe } = await join(srv.url, clients, 'dc-probe');
    assert.deepEqual((await subscribeOk(probe, 'presence-dc-1')).presence.ids, ['dc-a', 'dc-probe']);
    assert.deepEqual((await subscribeOk(probe, 'presence-dc-2')).presence.ids, ['dc-b', 'dc-probe']);
  });

  test('member events stay on their channel', async () => {
    const { socket: obs } = await join(srv.url, clients, 'iso-obs');
    const added = record(obs, MEMBER_ADDED);
    const removed = record(obs, MEMBER_REMOVED);
    await subscribeOk(obs, 'presence-iso-1');
    const { socket: u } = await join(srv.url, clients, 'iso-user');
    await subscribeOk(u, 'presence-iso-2');
    await subscribeOk(u, 'iso-public');
    await unsubscribe(u, 'presence-iso-2');
    await flush(obs);
    assert.deepEqual(added, [], 'no member_added from another channel');
    assert.deepEqual(removed, [], 'no member_removed from another channel');
    // Control: the same user on the observer's channel is seen.
    await subscribeOk(u, 'presence-iso-1');
    await waitForMatch(added, (e) => e.user_id === 'iso-user' && e.channel === 'presence-iso-1', 5000, 'member_added on presence-iso-1');
  });
});

describe('PRESENCE_MAX_MEMBERS=2', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({ PRESENCE_MAX_MEMBERS: '2' }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('a third distinct user gets 429 presence_full; another connection of a member succeeds; a freed slot can be taken', async () => {
    const ch = 'presence-full';
    const { socket: a } = await join(srv.url, clients, 'fa');
    const { socket: b } = await join(srv.url, clients, 'fb');
    const { socket: c } = await join(srv.url, clients, 'fc');
    const removedA = record(a, MEMBER_REMOVED);
    const addedA = record(a, MEMBER_ADDED);
    await subscribeOk(a, ch);
    await subscribeOk(b, ch);
    const refused = await subscribeFails(c, ch, 429, 'presence_full');
    assert.equal(refused.presence, undefined, 'no member list on refusal');
    await flush(a);
    assert.deepEqual(addedA.map((e) => e.user_id), ['fb'], 'the refused user was not announced');

    const { socket: a2 } = await join(srv.url, clients, 'fa');
    const ack = await subscribeOk(a2, ch);
    assert.deepEqual(ack.presence.ids, ['fa', 'fb']);

    // The limit is per channel.
    await subscribeOk(c, 'presence-full-other');

    b.close();
    await waitForMatch(removedA, (e) => e.user_id === 'fb', 5000, 'member_removed for fb');
    const ackC = await subscribeOk(c, ch);
    assert.deepEqual(ackC.presence.ids, ['fa', 'fc']);
    const { socket: b2 } = await join(srv.url, clients, 'fb');
    await subscribeFails(b2, ch, 429, 'presence_full');
  });
});

describe('PRESENCE_INCLUDE_EMAIL=true', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({ PRESENCE_INCLUDE_EMAIL: 'true' }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('user_info has the email in the ack and in member_added; a user without email has only the name', async () => {
    const ch = 'presence-email';
    const { socket: a } = await join(srv.url, clients, 'ea', { email: 'ea@example.test' });
    const added = record(a, MEMBER_ADDED);
    const ackA = await subscribeOk(a, ch);
    assert.deepEqual(ackA.presence.hash, { ea: { name: 'User ea', email: 'ea@example.test' } });
    const { socket: b } = await join(srv.url, clients, 'eb', { email: undefined });
    const ackB = await subscribeOk(b, ch);
    assert.deepEqual(ackB.presence.hash, { ea: { name: 'User ea', email: 'ea@example.test' }, eb: { name: 'User eb' } });
    const { socket: c } = await join(srv.url, clients, 'ec', { email: 'ec@example.test' });
    await subscribeOk(c, ch);
    await waitForMatch(added, (e) => e.user_id === 'ec', 5000, 'member_added for ec');
    await flush(a);
    assert.deepEqual(added, [
      { channel: ch, user_id: 'eb', user_info: { name: 'User eb' } },
      { channel: ch, user_id: 'ec', user_info: { name: 'User ec', email: 'ec@example.test' } },
    ]);
  });
});
