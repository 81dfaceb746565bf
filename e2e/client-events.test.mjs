// Client events (PRODUCT §4): `client-<name>` {channel, data} from a subscribed client on a
// private- or presence- channel reaches the other subscribers as {channel, data, user_id},
// never the sending connection; refusals are dropped and answered with jetsocket:error (and a
// failing ack when the emit asked for one).
//
// "Nothing arrived" checks use flush() (a ping round-trip after the send was acked): on one
// node, a frame queued for a connection before its ping is handled arrives before the pong.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { ping, Clients } from './helpers/clients.mjs';
import {
  ERROR, join, subscribeOk, unsubscribe, record, waitForMatch, waitUntil, flush, clientEvent,
} from './helpers/channels.mjs';

const MASTER_KEY_B64 = Buffer.from('fedcba9876543210fedcba9876543210').toString('base64');

/** assertRefused checks a failing client-event ack and the jetsocket:error that came with it. */
async function assertRefused(ack, errors, code, what) {
  assert.equal(ack?.ok, false, `${what}: ack ${JSON.stringify(ack)}`);
  assert.equal(ack.code, code, `${what}: ack ${JSON.stringify(ack)}`);
  assert.ok(Number.isInteger(ack.status) && ack.status >= 400 && ack.status < 500, `${what}: 4xx status in ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error, 'string', `${what}: error text`);
  const ev = await waitForMatch(errors, (e) => e?.code === code, 5000, `${what}: jetsocket:error ${code}`);
  assert.equal(typeof ev.message, 'string', `${what}: jetsocket:error message`);
  assert.ok(ev.message.length > 0, `${what}: jetsocket:error message`);
}

describe('client events', () => {
  let srv;
  const clients = new Clients();
  before(async () => {
    srv = await startServer({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 });
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('private channel: the others get {channel, data, user_id}; the sender and non-subscribers do not', async () => {
    const ch = 'private-group-chat';
    const [a, b, c, outsider] = await Promise.all(['ca', 'cb', 'cc', 'cd'].map((s) =>
      join(srv.url, clients, s, { groups: ['chat'] }).then((r) => r.socket)));
    const got = Object.fromEntries([['a', a], ['b', b], ['c', c], ['outsider', outsider]].map(([k, s]) => [k, record(s, 'client-msg')]));
    for (const s of [a, b, c]) await subscribeOk(s, ch);
    await subscribeOk(outsider, 'presence-elsewhere');

    const data = { text: 'hello', n: 1, nested: { list: [1, 'two', null, true] } };
    assert.deepEqual(await clientEvent(a, 'client-msg', ch, data), { ok: true });
    const expected = { channel: ch, data, user_id: 'ca' };
    assert.deepEqual(await waitForMatch(got.b, () => true, 5000, 'client-msg on b'), expected);
    assert.deepEqual(await waitForMatch(got.c, () => true, 5000, 'client-msg on c'), expected);
    await flush(a, b, c, outsider);
    assert.deepEqual(got.a, [], 'the sender does not get its own event');
    assert.deepEqual(got.outsider, [], 'a subscriber of another channel does not get it');
    assert.equal(got.b.length, 1, 'delivered once');
    assert.equal(got.c.length, 1, 'delivered once');
  });

  test('presence channel: delivered with the sender\'s user_id, also to the sender\'s other connection', async () => {
    const ch = 'presence-client-events';
    const { socket: a1 } = await join(srv.url, clients, 'pa');
    const { socket: a2 } = await join(srv.url, clients, 'pa');
    const { socket: b } = await join(srv.url, clients, 'pb');
    const g1 = record(a1, 'client-typing');
    const g2 = record(a2, 'client-typing');
    const gb = record(b, 'client-typing');
    for (const s of [a1, a2, b]) await subscribeOk(s, ch);
    assert.deepEqual(await clientEvent(a1, 'client-typing', ch, 'yes'), { ok: true });
    const expected = { channel: ch, data: 'yes', user_id: 'pa' };
    assert.deepEqual(await waitForMatch(gb, () => true, 5000, 'client-typing on b'), expected);
    assert.deepEqual(await waitForMatch(g2, () => true, 5000, 'client-typing on the sender\'s other connection'), expected);
    await flush(a1);
    assert.deepEqual(g1, [], 'the sending connection does not get it');
    // And back the other way.
    assert.deepEqual(await clientEvent(b, 'client-typing', ch, 'no'), { ok: true });
    assert.deepEqual(await waitForMatch(g1, () => true, 5000, 'client-typing from b on a1'), { channel: ch, data: 'no', user_id: 'pb' });
  });

  test('data of every JSON type arrives unchanged; an emit without ack callback is delivered too', async () => {
    const ch = 'private-user-types';
    const { socket: a } = await join(srv.url, clients, 'types');
    const { socket: b } = await join(srv.url, clients, 'types');
    const got = record(b, 'client-v');
    await subscribeOk(a, ch);
    await subscribeOk(b, ch);
    const values = ['text with "quotes" and \u00fcnicode \u{1F680}', 42, -1.5e-7, true, false, null, [1, [2, [3]]], { a: { b: { c: 'd' } } }];
    for (const v of values) assert.deepEqual(await clientEvent(a, 'client-v', ch, v), { ok: true }, `ack for ${JSON.stringify(v)}`);
    a.emit('client-v', { channel: ch, data: 'no ack' });
    await waitUntil(() => got.length >= values.length + 1, 5000, () => `all values; got ${JSON.stringify(got)}`);
    assert.deepEqual(got.map((e) => e.data), [...values, 'no ack'], 'in order and unchanged');
    for (const e of got) assert.deepEqual(Object.keys(e).sort(), ['channel', 'data', 'user_id']);
  });

  test('public channel: refused with client_events_forbidden, nothing delivered', async () => {
    const ch = 'public-no-client-events';
    const { socket: a } = await join(srv.url, clients, 'pub-a');
    const { socket: b } = await join(srv.url, clients, 'pub-b');
    const errors = record(a, ERROR);
    const got = record(b, 'client-x');
    await subscribeOk(a, ch);
    await subscribeOk(b, ch);
    await assertRefused(await clientEvent(a, 'client-x', ch, { hi: 1 }), errors, 'client_events_forbidden', 'public channel');
    await flush(b);
    assert.deepEqual(got, [], 'nothing delivered on the public channel');
    assert.equal((await ping(a)).pong, true, 'sender still connected');
  });

  test('private-encrypted- channel: refused with client_events_forbidden, nothing delivered', async () => {
    const ch = 'private-encrypted-group-vault';
    const claims = { groups: ['vault'], permissions: ['encrypted-channels'] };
    const { socket: a } = await join(srv.url, clients, 'enc-a', claims);
    const { socket: b } = await join(srv.url, clients, 'enc-b', claims);
    const errors = record(a, ERROR);
    const got = record(b, 'client-x');
    await subscribeOk(a, ch);
    await subscribeOk(b, ch);
    await assertRefused(await clientEvent(a, 'client-x', ch, { ciphertext: 'x', nonce: 'y' }), errors, 'client_events_forbidden', 'encrypted channel');
    await flush(b);
    assert.deepEqual(got, [], 'nothing delivered on the encrypted channel');
  });

  test('not subscribed (never, or after unsubscribe): refused with not_subscribed', async () => {
    const ch = 'private-group-ns';
    const { socket: a } = await join(srv.url, clients, 'ns-a', { groups: ['ns'] });
    const { socket: b } = await join(srv.url, clients, 'ns-b', { groups: ['ns'] });
    const errors = record(a, ERROR);
    const got = record(b, 'client-x');
    await subscribeOk(b, ch);
    await assertRefused(await clientEvent(a, 'client-x', ch, 1), errors, 'not_subscribed', 'never subscribed');
    await subscribeOk(a, ch);
    assert.deepEqual(await clientEvent(a, 'client-x', ch, 2), { ok: true });
    await unsubscribe(a, ch);
    errors.length = 0;
    await assertRefused(await clientEvent(a, 'client-x', ch, 3), errors, 'not_subscribed', 'after unsubscribe');
    // A presence channel the sender may join but has not.
    errors.length = 0;
    await assertRefused(await clientEvent(a, 'client-x', 'presence-not-joined', 4), errors, 'not_subscribed', 'presence not joined');
    await flush(b);
    assert.deepEqual(got.map((e) => e.data), [2], 'only the event sent while subscribed was delivered');
    // And the unsubscribed connection no longer receives the channel's events.
    const gotA = record(a, 'client-y');
    assert.deepEqual(await clientEvent(b, 'client-y', ch, 5), { ok: true });
    await flush(a);
    assert.deepEqual(gotA, [], 'no events after unsubscribe');
  });

  test('a refusal without an ack callback is still answered with jetsocket:error', async () => {
    const { socket: a } = await join(srv.url, clients, 'noack');
    const errors = record(a, ERROR);
    await subscribeOk(a, 'noack-public');
    a.emit('client-x', { channel: 'noack-public', data: 1 });
    await waitForMatch(errors, (e) => e.code === 'client_events_forbidden', 5000, 'jetsocket:error without ack');
  });

  test('data larger than MAX_PAYLOAD_BYTES (10240 as JSON) is refused with payload_too_large; exactly 10240 passes', async () => {
    const ch = 'private-user-size';
    const { socket: a } = await join(srv.url, clients, 'size');
    const { socket: b } = await join(srv.url, clients, 'size');
    const errors = record(a, ERROR);
    const got = record(b, 'client-big');
    await subscribeOk(a, ch);
    await subscribeOk(b, ch);
    const fits = 'x'.repeat(10240 - 2); // JSON "xxx...": exactly 10240 bytes
    assert.deepEqual(await clientEvent(a, 'client-big', ch, fits), { ok: true });
    const over = 'x'.repeat(10240 - 1); // 10241 bytes as JSON
    await assertRefused(await clientEvent(a, 'client-big', ch, over), errors, 'payload_too_large', 'one byte over');
    const objOver = { blob: 'y'.repeat(12_000) };
    errors.length = 0;
    await assertRefused(await clientEvent(a, 'client-big', ch, objOver), errors, 'payload_too_large', 'object of 12 KB');
    await waitForMatch(got, () => true, 5000, 'the event that fits');
    await flush(b);
    assert.equal(got.length, 1, 'only the event that fits was delivered');
    assert.equal(got[0].data, fits);
    assert.equal((await ping(a)).pong, true, 'sender still connected after refusals');
  });

  test('data far over MAX_PAYLOAD_BYTES (30 KB) is answered with a typed jetsocket:error (payload_too_large, or frame_too_large if the connection is dropped) and never delivered', async () => {
    const ch = 'private-user-huge';
    const { socket: a } = await join(srv.url, clients, 'huge');
    const { socket: b } = await join(srv.url, clients, 'huge');
    const errors = record(a, ERROR);
    const got = record(b, 'client-huge');
    await subscribeOk(a, ch);
    await subscribeOk(b, ch);
    let closedBy = null;
    a.once('disconnect', (reason) => { closedBy = reason; });
    a.emit('client-huge', { channel: ch, data: 'z'.repeat(30_000) });
    await waitUntil(() => errors.length > 0 || closedBy !== null, 5000, 'jetsocket:error or disconnect for 30 KB data');
    await waitUntil(() => errors.length > 0, 1000, () => `a jetsocket:error; the connection was closed (${closedBy}) without one`);
    const ev = errors[0];
    assert.ok(['payload_too_large', 'frame_too_large'].includes(ev.code), `typed error: ${JSON.stringify(ev)}`);
    await flush(b);
    assert.deepEqual(got, [], 'not delivered');
    assert.equal((await ping(b)).pong, true, 'the other subscriber is unaffected');
  });

  test('bad client event payloads: not an object, bad channel name, over-long event name', async () => {
    const { socket: a } = await join(srv.url, clients, 'bad-ce');
    const errors = record(a, ERROR);
    await subscribeOk(a, 'private-user-bad-ce');
    const notObject = await new Promise((resolve) => a.emit('client-x', 'private-user-bad-ce', resolve));
    await assertRefused(notObject, errors, 'invalid_payload', 'string payload');
    errors.length = 0;
    await assertRefused(await clientEvent(a, 'client-x', 'bad name', 1), errors, 'invalid_channel', 'bad channel name');
    errors.length = 0;
    await assertRefused(await clientEvent(a, `client-${'e'.repeat(200)}`, 'private-user-bad-ce', 1), errors, 'invalid_event', 'event name over 200');
    assert.equal((await ping(a)).pong, true, 'still connected');
  });
});

describe('client events: CLIENT_EVENT_RATE=5', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({ CLIENT_EVENT_RATE: '5' }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('30 events sent at once: some refused with rate_limited, the receiver gets exactly the accepted ones', async () => {
    const ch = 'presence-rate';
    const { socket: sender } = await join(srv.url, clients, 'rs');
    const { socket: receiver } = await join(srv.url, clients, 'rr');
    const errors = record(sender, ERROR);
    const got = record(receiver, 'client-n');
    await subscribeOk(sender, ch);
    await subscribeOk(receiver, ch);
    const acks = await Promise.all(Array.from({ length: 30 }, (_, i) => clientEvent(sender, 'client-n', ch, i, 10_000)));
    const ok = acks.filter((a) => a?.ok === true);
    const limited = acks.filter((a) => a?.ok === false && a.code === 'rate_limited');
    assert.equal(ok.length + limited.length, 30, `every ack is ok or rate_limited: ${JSON.stringify(acks)}`);
    assert.ok(limited.length >= 1, 'some were rate limited');
    for (const a of limited) assert.equal(a.status, 429, JSON.stringify(a));
    await waitForMatch(errors, (e) => e.code === 'rate_limited', 5000, 'jetsocket:error rate_limited');

    await waitUntil(() => got.length >= ok.length, 5000, () => `${ok.length} accepted events; got ${got.length}`);
    await flush(receiver);
    assert.ok(got.length >= 1, 'at least one delivered');
    assert.ok(got.length < 30, `fewer delivered than sent (${got.length})`);
    assert.equal(got.length, ok.length, 'exactly the accepted ones are delivered');
    const accepted = acks.map((a, i) => (a.ok ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(got.map((e) => e.data), accepted, 'the accepted ones, in order');
    // The limit is per connection and the sender stays connected.
    assert.equal((await ping(sender)).pong, true);
    assert.deepEqual(await clientEvent(receiver, 'client-n', ch, 'other connection'), { ok: true });
    assert.equal(sender.connected, true, 'sender not disconnected');
  });
});
