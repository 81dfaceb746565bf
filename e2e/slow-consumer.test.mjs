// A subscriber that stops reading must not delay anyone else (PRODUCT §4 fan-out, §9): the
// server queues at most 256 frames for it, then disconnects it as a slow consumer, while the
// other subscribers get every message and the server keeps answering.
//
// The frozen client is a raw websocket whose TCP socket is paused after subscribing, so the
// server's writes back up through the kernel buffers into its send queue. Messages are ~16 KB
// so 1,000 of them (16 MB) are far more than loopback socket buffers (a few MB) plus the queue.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { mint } from './helpers/jwt.mjs';
import { connect, ping, sleep, withTimeout, Clients, RawEio } from './helpers/clients.mjs';
import {
  MEMBER_REMOVED, join, subscribeOk, record, waitForMatch, waitUntil, clientEvent, userClaims,
} from './helpers/channels.mjs';

const MESSAGES = 1000;
const PAD = 'p'.repeat(16_000);
// The server takes at most 100 packets/s per connection (burst 200) before dropping them, so
// the sender paces itself: BATCH events, then waits for their acks and the rest of BATCH_MS.
const BATCH = 40;
const BATCH_MS = 500;

/** openFrozen opens a raw connection, subscribes it to `channel`, then stops reading. */
async function openFrozen(url, sub, channel, clients) {
  const raw = clients.add(await RawEio.open(url, mint(userClaims(sub))));
  await raw.next((f) => f === '40', 5000, 'socket.io connect');
  await raw.next((f) => f.startsWith('42["jetsocket:connection_established"'), 5000, 'connection_established');
  raw.send(`421${JSON.stringify(['jetsocket:subscribe', { channel }])}`);
  const ackFrame = await raw.next((f) => f.startsWith('431['), 5000, 'subscribe ack');
  const [ack] = JSON.parse(ackFrame.slice(3));
  assert.equal(ack.ok, true, `frozen client subscribed: ${ackFrame}`);
  raw.ws._socket.pause();
  return raw;
}

describe('slow consumer', () => {
  let srv;
  const clients = new Clients();
  before(async () => {
    srv = await startServer({ CLIENT_EVENT_RATE: '1000', MAX_PAYLOAD_BYTES: '20000' });
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test(`a frozen subscriber is disconnected; the others get all ${MESSAGES} messages and the server keeps answering`, { timeout: 120_000 }, async () => {
    const ch = 'presence-flood';
    const { socket: receiver } = await join(srv.url, clients, 'recv');
    // A second receiver on the default transports (polling, then upgrade to websocket).
    const { socket: receiver2 } = await connect(srv.url, mint(userClaims('recv2')), { clients });
    const { socket: sender } = await join(srv.url, clients, 'send');
    const { socket: bystander } = await join(srv.url, clients, 'bystander');
    const got = record(receiver, 'client-flood');
    const got2 = record(receiver2, 'client-flood');
    const removed = record(receiver, MEMBER_REMOVED);
    let receiverGone = null;
    receiver.on('disconnect', (r) => { receiverGone = r; });
    receiver2.on('disconnect', (r) => { receiverGone = `receiver2: ${r}`; });

    await subscribeOk(receiver, ch);
    await subscribeOk(receiver2, ch);
    await subscribeOk(sender, ch);
    const frozen = await openFrozen(srv.url, 'frozen', ch, clients);

    let pings = 0;
    for (let start = 0; start < MESSAGES; start += BATCH) {
      const t0 = Date.now();
      const n = Math.min(BATCH, MESSAGES - start);
      const acks = await Promise.all(Array.from({ length: n }, (_, k) =>
        clientEvent(sender, 'client-flood', ch, { i: start + k, pad: PAD }, 10_000)));
      for (const [k, a] of acks.entries()) assert.deepEqual(a, { ok: true }, `ack of message ${start + k}`);
      // The server answers others while the frozen client backs up.
      const pong = await ping(bystander, 5000);
      assert.equal(pong.pong, true, `bystander ping after message ${start + n}`);
      pings += 1;
      assert.equal(receiverGone, null, `a normal receiver was disconnected (${receiverGone}) after message ${start + n}`);
      await sleep(Math.max(0, t0 + BATCH_MS - Date.now()));
    }
    assert.equal(pings, Math.ceil(MESSAGES / BATCH));

    await waitUntil(() => got.length >= MESSAGES && got2.length >= MESSAGES, 30_000,
      () => `all ${MESSAGES} messages; receiver has ${got.length}, receiver2 has ${got2.length}`);
    await sleep(200);
    for (const [name, list] of [['receiver', got], ['receiver2', got2]]) {
      assert.equal(list.length, MESSAGES, `${name}: no duplicates`);
      const bad = list.findIndex((e, i) => e.data?.i !== i || e.user_id !== 'send' || e.channel !== ch || e.data?.pad !== PAD);
      assert.equal(bad, -1, `${name}: message ${bad} intact and in order`);
    }

    // The frozen client was cut off as a slow consumer, and its disconnect left the channel.
    await waitUntil(() => /slow consumer/.test(srv.output()), 20_000, 'a "slow consumer" line in the server output');
    await waitForMatch(removed, (e) => e.user_id === 'frozen', 10_000, 'member_removed for the frozen client');
    // Reading again, the frozen client finds its connection closed.
    frozen.ws._socket.resume();
    await withTimeout(frozen.closed, 15_000, 'the frozen connection to be closed');

    assert.equal((await ping(receiver)).pong, true, 'receiver still answered');
    assert.equal((await ping(sender)).pong, true, 'sender still answered');
    const { socket: newcomer } = await join(srv.url, clients, 'newcomer');
    const ack = await subscribeOk(newcomer, ch);
    assert.deepEqual(ack.presence.ids, ['newcomer', 'recv', 'recv2', 'send'], 'the frozen member is gone');
    assert.equal(receiverGone, null, 'no normal receiver was disconnected');
  });
});
