// History and recovery (PRODUCT §14, docs/history.md) with a raw socket.io client:
// publications carry {offset, epoch}; a client cut off by a TCP proxy of the test's own
// while 100 events go out reconnects, subscribes again with `since` and gets all 100 in
// order, none twice, after an ack that says recovered:true; history that overflowed or
// expired says recovered:false and replays nothing; client events are recovered too; the
// signed HTTP API lists a channel's history; on two nodes over a real redis-server a
// client recovers on the other node, and a Redis flush changes the epoch.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from './helpers/server.mjs';
import { Clients, connect, sleep, CLIENT_LABEL } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import { userClaims, join, subscribeOk, emitAck, record, waitUntil, flush, clientEvent } from './helpers/channels.mjs';
import { MASTER_KEY_B64, appEnv, sdk, ok, signedRequest } from './helpers/pusher.mjs';
import { startProxy } from './helpers/tcpproxy.mjs';
import { redisSkip, startRedis } from './helpers/redis.mjs';

const ESTABLISHED = 'jetsocket:connection_established';

/** positionOf is the {epoch, offset} of a delivered event. */
const positionOf = (p) => ({ epoch: p.epoch, offset: p.offset });

/** resubscribe subscribes with since and resolves with the ack. */
const resubscribe = (socket, channel, since) => emitAck(socket, 'jetsocket:subscribe', { channel, since });

/** publishN triggers `event` with data {n} for n in from..to, one call each, in order. */
async function publishN(p, channel, event, from, to) {
  for (let n = from; n <= to; n++) await ok(p.trigger(channel, event, { n }), `trigger ${n}`);
}

/** assertSequence checks events are data.n from..to with offsets following `after`. */
function assertSequence(events, from, to, after, what) {
  assert.equal(events.length, to - from + 1, `${what}: ${events.length} events, want ${to - from + 1}`);
  events.forEach((e, i) => {
    assert.equal(e.data.n, from + i, `${what}: event ${i} is n=${e.data.n}, want ${from + i} (in order, none twice)`);
    assert.equal(e.offset, after.offset + i + 1, `${what}: event ${i} offset`);
    assert.equal(e.epoch, after.epoch, `${what}: event ${i} epoch`);
  });
}

describe(`history and recovery (${CLIENT_LABEL})`, { timeout: 120_000 }, () => {
  let srv;
  let p;
  const clients = new Clients();

  before(async () => {
    srv = await startServer(appEnv({
      CHANNEL_HISTORY: 'hist-small-*=10;hist-short-*=100/1s;hist-off-*=0', ENCRYPTION_MASTER_KEY: MASTER_KEY_B64,
      // `since` is what this suite tests: socket.io 4.x's own connection state recovery
      // (which would restore a reconnecting 4.x client's channels by itself, so that its
      // `since` replays again) is recovery.test.mjs's.
      RECOVERY_WINDOW: '0',
    }));
    p = sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
  });
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  test('cut off by a proxy while 100 events go out: reconnects, recovers all 100 in order, none twice', async () => {
    const proxy = await startProxy(srv.port);
    try {
      const ch = 'hist-news';
      const socket = clients.add((await connect(proxy.url, mint(userClaims('h-cut')), {
        transports: ['websocket'], reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0,
      })).socket);
      const log = [];
      socket.on('tick', (e) => log.push(['tick', e]));
      const ack = await subscribeOk(socket, ch);
      assert.equal(ack.position.offset, 0, 'a channel never published on starts at offset 0');
      assert.equal(typeof ack.position.epoch, 'string');
      assert.equal(ack.recovered, undefined, 'recovered only answers since');

      // Five live ones first: they carry their positions.
      await publishN(p, ch, 'tick', 1, 5);
      await waitUntil(() => log.length === 5, 5000, 'the first 5 events');
      const first = log.map(([, e]) => e);
      assertSequence(first, 1, 5, ack.position, 'live');
      let last = positionOf(first[4]);

      // The tunnel: every connection dropped, reconnection refused for 2 s.
      const established = record(socket, ESTABLISHED);
      const down = new Promise((resolve) => socket.once('disconnect', resolve));
      const reopened = proxy.refuse(2000);
      await down;
      await publishN(p, ch, 'tick', 6, 105);
      await reopened;
      await waitUntil(() => established.length > 0, 15_000, 'the client to reconnect through the proxy');

      const before = log.length;
      const ack2 = await new Promise((resolve) => socket.emit('jetsocket:subscribe', { channel: ch, since: last }, (a) => {
        log.push(['ack', a]);
        resolve(a);
      }));
      assert.equal(ack2.ok, true, JSON.stringify(ack2));
      assert.equal(ack2.recovered, true, `ack ${JSON.stringify(ack2)}`);
      assert.deepEqual(ack2.position, { epoch: last.epoch, offset: 105 });
      await waitUntil(() => log.length === before + 101, 10_000, () => `100 recovered events, got ${log.length - before - 1}`);
      assert.equal(log[before][0], 'ack', 'the ack comes before the replayed events');
      const replayed = log.slice(before + 1).map(([, e]) => e);
      assertSequence(replayed, 6, 105, last, 'recovered');
      last = positionOf(replayed[99]);

      // Live again, after the replay; nothing else arrived.
      await publishN(p, ch, 'tick', 106, 106);
      await waitUntil(() => log.length === before + 102, 5000, 'the next live event');
      await flush(socket);
      assertSequence([log.at(-1)[1]], 106, 106, last, 'live after the recovery');
    } finally {
      proxy.close();
    }
  });

  test('history that overflowed: recovered:false, nothing replayed', async () => {
    const ch = 'hist-small-1';
    const { socket: a } = await join(srv.url, clients, 'h-small');
    const ack = await subscribeOk(a, ch);
    await publishN(p, ch, 'tick', 1, 25);
    const { socket: b } = await join(srv.url, clients, 'h-small');
    const got = record(b, 'tick');
    const ack2 = await resubscribe(b, ch, { epoch: ack.position.epoch, offset: 2 });
    assert.equal(ack2.recovered, false, JSON.stringify(ack2));
    assert.deepEqual(ack2.position, { epoch: ack.position.epoch, offset: 25 });
    await flush(b);
    assert.deepEqual(got, [], 'no partial replay');
    // From a position still kept (the last 10 are), it recovers.
    const { socket: c } = await join(srv.url, clients, 'h-small');
    const gotC = record(c, 'tick');
    assert.equal((await resubscribe(c, ch, { epoch: ack.position.epoch, offset: 15 })).recovered, true);
    await waitUntil(() => gotC.length === 10, 5000, 'the last 10');
    assertSequence(gotC, 16, 25, { epoch: ack.position.epoch, offset: 15 }, 'kept');
  });

  test('history that expired: a new epoch, recovered:false, nothing replayed', async () => {
    const ch = 'hist-short-1';
    const { socket: a } = await join(srv.url, clients, 'h-short');
    await subscribeOk(a, ch);
    const got = record(a, 'tick');
    await publishN(p, ch, 'tick', 1, 3);
    await waitUntil(() => got.length === 3, 5000, '3 events');
    const last = positionOf(got[2]);
    a.close();
    // The history lives 1 s after its last publication; the API shows the epoch change.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await signedRequest(srv, { method: 'GET', path: `/channels/${ch}/history` });
      if (res.json.epoch !== last.epoch) break;
      assert.ok(Date.now() < deadline, 'the history did not expire');
      await sleep(100);
    }
    const { socket: b } = await join(srv.url, clients, 'h-short');
    const gotB = record(b, 'tick');
    const ack = await resubscribe(b, ch, last);
    assert.equal(ack.recovered, false, JSON.stringify(ack));
    assert.notEqual(ack.position.epoch, last.epoch, 'the epoch changed');
    await flush(b);
    assert.deepEqual(gotB, []);
  });

  test('client events are recovered too, with their user_id', async () => {
    const ch = 'private-group-hist';
    const { socket: a } = await join(srv.url, clients, 'h-ca', { groups: ['hist'] });
    const ack = await subscribeOk(a, ch);
    // The ack carries the event's position: its sender, not sent it, sees no gap.
    for (let n = 1; n <= 3; n++) {
      assert.deepEqual(await clientEvent(a, 'client-note', ch, { n }), { ok: true, epoch: ack.position.epoch, offset: ack.position.offset + n });
    }
    const { socket: b } = await join(srv.url, clients, 'h-cb', { groups: ['hist'] });
    const got = record(b, 'client-note');
    const ack2 = await resubscribe(b, ch, ack.position);
    assert.equal(ack2.recovered, true, JSON.stringify(ack2));
    await waitUntil(() => got.length === 3, 5000, '3 client events');
    assertSequence(got, 1, 3, ack.position, 'client events');
    assert.ok(got.every((e) => e.user_id === 'h-ca' && e.channel === ch), JSON.stringify(got));
  });

  test('an encrypted channel keeps only ciphertext', async () => {
    const ch = 'private-encrypted-user-h-enc';
    await ok(p.trigger(ch, 'secret', { text: 'plaintext-marker' }), 'encrypted trigger');
    const res = await signedRequest(srv, { method: 'GET', path: `/channels/${ch}/history` });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.publications.length, 1);
    const { data } = res.json.publications[0];
    assert.equal(typeof data.nonce, 'string', JSON.stringify(data));
    assert.equal(typeof data.ciphertext, 'string', JSON.stringify(data));
    assert.ok(!res.text.includes('plaintext-marker'), 'no plaintext in the history');
  });

  test('a channel without history: no position, recovered:false', async () => {
    const { socket } = await join(srv.url, clients, 'h-off');
    const ack = await resubscribe(socket, 'hist-off-1', { epoch: 'x', offset: 1 });
    assert.equal(ack.ok, true);
    assert.equal(ack.recovered, false);
    assert.equal(ack.position, undefined);
    const got = record(socket, 'tick');
    await publishN(p, 'hist-off-1', 'tick', 1, 1);
    await waitUntil(() => got.length === 1, 5000, 'the event');
    assert.deepEqual(got[0], { channel: 'hist-off-1', data: { n: 1 } });
  });

  test('a malformed since is refused 400 invalid_payload', async () => {
    const { socket } = await join(srv.url, clients, 'h-bad');
    for (const since of ['x', { epoch: 5, offset: 1 }, { epoch: 'e', offset: -1 }, { epoch: 'e', offset: 1.5 }]) {
      const ack = await resubscribe(socket, 'hist-bad', since);
      assert.equal(ack.ok, false, JSON.stringify({ since, ack }));
      assert.equal(ack.status, 400);
      assert.equal(ack.code, 'invalid_payload');
    }
    await flush(socket); // still serving
  });

  test('GET /channels/{name}/history: oldest first, limit and since; bad params 400', async () => {
    const ch = 'hist-api';
    await publishN(p, ch, 'e', 1, 5);
    const all = await signedRequest(srv, { method: 'GET', path: `/channels/${ch}/history` });
    assert.equal(all.status, 200, all.text);
    assert.equal(all.json.offset, 5);
    assert.deepEqual(all.json.publications.map((x) => [x.offset, x.event, x.data]),
      [1, 2, 3, 4, 5].map((n) => [n, 'e', { n }]));
    const some = await signedRequest(srv, { method: 'GET', path: `/channels/${ch}/history`, params: { since: '2', limit: '2' } });
    assert.deepEqual(some.json.publications.map((x) => x.offset), [3, 4]);
    assert.equal(some.json.epoch, all.json.epoch);
    for (const params of [{ limit: '0' }, { limit: 'x' }, { since: '-1' }]) {
      const res = await signedRequest(srv, { method: 'GET', path: `/channels/${ch}/history`, params });
      assert.equal(res.status, 400, `${JSON.stringify(params)}: ${res.text}`);
    }
    const off = await signedRequest(srv, { method: 'GET', path: '/channels/hist-off-2/history' });
    assert.equal(off.status, 404, off.text);
    const unsigned = await fetch(`${srv.url}/apps/${appEnv().APP_ID}/channels/${ch}/history`);
    assert.equal(unsigned.status, 401);
  });
});

const skip = redisSkip;


/** redisCommand sends one inline command and resolves with the first reply line. */
function redisCommand(port, cmd) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(`${cmd}\r\n`));
    c.once('data', (d) => { c.end(); resolve(d.toString().trim()); });
    c.on('error', reject);
  });
}

describe(`history on two nodes over Redis (${CLIENT_LABEL})`, { skip, timeout: 120_000 }, () => {
  let redis;
  let n1;
  let n2;
  const clients = new Clients();

  before(async () => {
    redis = await startRedis();
    const env = appEnv({ REDIS_URL: redis.url, HISTORY_SIZE: '100' });
    [n1, n2] = await Promise.all([startServer(env), startServer(env)]);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all([n1?.stop(), n2?.stop()]);
    redis?.proc.kill('SIGKILL');
  });

  test('one sequence of positions from both nodes; a client recovers on the other node; a flush changes the epoch', async () => {
    const ch = 'hist-cluster';
    const { socket: a } = await join(n1.url, clients, 'hc-a');
    const ack = await subscribeOk(a, ch);
    const got = record(a, 'tick');
    await publishN(sdk(n1), ch, 'tick', 1, 3);
    await publishN(sdk(n2), ch, 'tick', 4, 6);
    await waitUntil(() => got.length === 6, 5000, '6 events from both nodes');
    assertSequence(got, 1, 6, ack.position, 'both nodes');
    const last = positionOf(got[5]);
    a.close();

    await publishN(sdk(n1), ch, 'tick', 7, 36);
    const { socket: b } = await join(n2.url, clients, 'hc-a');
    const gotB = record(b, 'tick');
    const ack2 = await resubscribe(b, ch, last);
    assert.equal(ack2.recovered, true, JSON.stringify(ack2));
    await waitUntil(() => gotB.length === 30, 10_000, '30 recovered events on the other node');
    assertSequence(gotB, 7, 36, last, 'recovered on node 2');

    assert.equal(await redisCommand(redis.port, 'FLUSHALL'), '+OK');
    const { socket: c } = await join(n1.url, clients, 'hc-a');
    const gotC = record(c, 'tick');
    const ack3 = await resubscribe(c, ch, positionOf(gotB[29]));
    assert.equal(ack3.recovered, false, JSON.stringify(ack3));
    assert.notEqual(ack3.position.epoch, last.epoch, 'a new epoch after the flush');
    assert.equal(ack3.position.offset, 0);
    await flush(c);
    assert.deepEqual(gotC, []);
  });
});
