// Many-node mode (PRODUCT §8): two real jetsocket processes with REDIS_URL on a real
// redis-server act as one. A trigger on either node reaches subscribers on both, the
// sender exclusion, #server-to-user and terminate cross nodes, presence is one list,
// client events cross, channel queries count both nodes, and a node killed with SIGKILL
// has its members removed within 30 s. After a Redis restart that lost everything, the
// nodes write their connections' presence and counts again, and a user who left while
// Redis was away is announced gone, once, to subscribers and webhooks.
//
// Every suite runs once per Redis layout (helpers/redis.mjs LAYOUTS): one Redis, two
// independent servers (REDIS_URL lists both, in another order on each node), and a Redis
// Cluster of three masters started here (REDIS_CLUSTER=true). E2E_REDIS_LAYOUTS (a comma
// list of their names) runs fewer, for a quick local run.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, freePort } from './helpers/server.mjs';
import { Clients, connect, sleep } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import {
  MEMBER_ADDED, MEMBER_REMOVED, join, userClaims, subscribeOk, record, waitForMatch, waitUntil, flush, clientEvent, disconnected,
} from './helpers/channels.mjs';
import { appEnv, sdk, ok } from './helpers/pusher.mjs';
import { redisSkip, LAYOUTS, startLayout } from './helpers/redis.mjs';

const skip = redisSkip;
const layouts = process.env.E2E_REDIS_LAYOUTS
  ? process.env.E2E_REDIS_LAYOUTS.split(',').map((l) => l.trim()).filter((l) => {
    if (!LAYOUTS.includes(l)) throw new Error(`E2E_REDIS_LAYOUTS: unknown layout ${l}; known: ${LAYOUTS}`);
    return true;
  })
  : LAYOUTS;


/** webhookReceiver collects the events of every webhook POST. */
async function webhookReceiver() {
  const events = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      try { events.push(...JSON.parse(body).events); } catch { /* counted as missing */ }
      res.end('ok');
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${srv.address().port}/hook`, events, close: () => srv.close() };
}

for (const layoutName of layouts) {
describe(`many nodes over ${layoutName}`, { skip, timeout: 180_000 }, () => {
  let redis;
  let n1;
  let n2;
  let p1;
  let p2;
  const clients = new Clients();

  before(async () => {
    redis = await startLayout(layoutName);
    // Several servers listed in another order on each node: channels are placed by the
    // servers' addresses, not their place in the list.
    [n1, n2] = await Promise.all([startServer(appEnv(redis.env)), startServer(appEnv(redis.envReversed))]);
    p1 = sdk(n1);
    p2 = sdk(n2);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all([n1?.stop(), n2?.stop()]);
    await redis?.stop();
  });

  test('a trigger on either node reaches subscribers on both; socket_id excludes across nodes', async () => {
    const { socket: a } = await join(n1.url, clients, 'cl-a');
    const { socket: b, info: bi } = await join(n2.url, clients, 'cl-b');
    await subscribeOk(a, 'cl-news');
    await subscribeOk(b, 'cl-news');
    const got = { a: record(a, 'headline'), b: record(b, 'headline') };
    await ok(p1.trigger('cl-news', 'headline', { from: 1 }), 'trigger on node 1');
    await ok(p2.trigger('cl-news', 'headline', { from: 2 }), 'trigger on node 2');
    await ok(p1.trigger('cl-news', 'headline', { from: 'not b' }, { socket_id: bi.socket_id }), 'trigger excluding b');
    await waitUntil(() => got.a.length === 3 && got.b.length === 2, 5000, () => `deliveries ${JSON.stringify(got)}`);
    await flush(a, b);
    // History is off here (the e2e default): each node delivers its own publications at
    // once and the other node's when Redis hands them over, so node 2's trigger may reach
    // a after node 1's later one. Each node's own stay in order; a channel that keeps
    // history has one order on every node (history.test.mjs, deploy.test.mjs).
    const froms = (g) => g.map((m) => m.data.from);
    assert.deepEqual(froms(got.a).filter((f) => f !== 2), [1, 'not b'], `node 1's in order: ${froms(got.a)}`);
    assert.deepEqual([...froms(got.a)].sort(), [1, 2, 'not b'].sort());
    assert.deepEqual([...froms(got.b)].sort(), [1, 2]);

    // The channel queries count both nodes' subscribers, asked on either node.
    for (const p of [p1, p2]) {
      const res = await ok(p.get({ path: '/channels/cl-news', params: { info: 'subscription_count' } }), 'channel info');
      assert.deepEqual(res.json, { occupied: true, subscription_count: 2 });
    }
    const list = await ok(p2.get({ path: '/channels', params: { filter_by_prefix: 'cl-', info: 'subscription_count' } }), 'channels');
    assert.deepEqual(list.json.channels['cl-news'], { subscription_count: 2 });
  });

  test('a node receives from Redis only the channels with subscribers on it (jetsocket_cluster_received_total)', async () => {
    const received = async (n) => {
      const text = await (await fetch(`${n.url}/metrics`)).text();
      const m = text.match(/^jetsocket_cluster_received_total (\d+)/m);
      assert.ok(m, 'jetsocket_cluster_received_total on /metrics');
      return Number(m[1]);
    };
    const { socket: a } = await join(n1.url, clients, 'cl-only-a');
    const { socket: b } = await join(n2.url, clients, 'cl-only-b');
    await subscribeOk(a, 'cl-only-1');
    await subscribeOk(b, 'cl-only-2');
    const got = { a: record(a, 'tick'), b: record(b, 'tick') };
    const before = { n1: await received(n1), n2: await received(n2) };
    for (let i = 0; i < 10; i++) await ok(p2.trigger('cl-only-1', 'tick', { i }), 'trigger for node 1');
    // A marker for node 2's own channel, after the others from the same node.
    await ok(p2.trigger('cl-only-2', 'tick', { marker: true }), 'trigger for node 2');
    await waitUntil(() => got.a.length === 10 && got.b.length === 1, 5000, () => `deliveries ${JSON.stringify(got)}`);
    assert.equal(await received(n1) - before.n1, 10, 'node 1 receives its channel');
    // The marker comes back to node 2 from Redis after the ticks would have, had it
    // been subscribed to their channel.
    let n2got = 0;
    await waitUntil(async () => (n2got = await received(n2) - before.n2) >= 1, 5000, 'the marker back from Redis');
    assert.equal(n2got, 1, 'node 2 receives only its own channel (the marker)');
  });

  test('#server-to-user and terminate reach the user on the other node', async () => {
    const { socket: u } = await join(n2.url, clients, 'cl-user');
    const notes = record(u, 'note');
    await ok(p1.sendToUser('cl-user', 'note', { text: 'hi' }), 'sendToUser on node 1');
    await waitForMatch(notes, (m) => m.data?.text === 'hi', 5000, 'note on node 2');
    const gone = disconnected(u);
    await ok(p1.terminateUserConnections('cl-user'), 'terminate on node 1');
    await gone;
  });

  test('presence is one list; client events cross nodes; a killed node\'s members go within 30 s', async () => {
    const ch = 'presence-cl';
    const { socket: a } = await join(n1.url, clients, 'cl-p1');
    const ackA = await subscribeOk(a, ch);
    assert.deepEqual(ackA.presence.ids, ['cl-p1']);
    const added = record(a, MEMBER_ADDED);
    const removed = record(a, MEMBER_REMOVED);
    const fromB = record(a, 'client-hello');

    // A third node, to be killed.
    const n3 = await startServer(appEnv(redis.env));
    const { socket: b } = await join(n2.url, clients, 'cl-p2');
    const { socket: c } = await connect(n3.url, mint(userClaims('cl-p3')), { clients, transports: ['websocket'] });
    const ackB = await subscribeOk(b, ch);
    assert.deepEqual(ackB.presence.ids, ['cl-p1', 'cl-p2']);
    const ackC = await subscribeOk(c, ch);
    assert.deepEqual(ackC.presence.ids, ['cl-p1', 'cl-p2', 'cl-p3']);
    await waitForMatch(added, (m) => m.user_id === 'cl-p3', 5000, 'member_added from node 3');
    assert.deepEqual(added.map((m) => m.user_id), ['cl-p2', 'cl-p3']);

    const ack = await clientEvent(b, 'client-hello', ch, { text: 'across' });
    assert.equal(ack?.ok, true);
    await waitForMatch(fromB, (m) => m.data?.text === 'across', 5000, 'client event from node 2');
    assert.equal(fromB[0].user_id, 'cl-p2');

    const users = await ok(p1.get({ path: `/channels/${ch}/users` }), 'users');
    assert.deepEqual(users.json.users.map((u) => u.id), ['cl-p1', 'cl-p2', 'cl-p3']);

    const killedAt = Date.now();
    n3.proc.kill('SIGKILL');
    await waitForMatch(removed, (m) => m.user_id === 'cl-p3', 30_000, 'member_removed for the killed node\'s user');
    const took = Date.now() - killedAt;
    assert.ok(took < 30_000, `removed after ${took} ms`);
    await flush(a);
    assert.deepEqual(removed.map((m) => m.user_id), ['cl-p3'], 'only the killed node\'s member went');
    const after = await ok(p2.get({ path: `/channels/${ch}/users` }), 'users after');
    assert.deepEqual(after.json.users.map((u) => u.id), ['cl-p1', 'cl-p2']);
  });

  test('triggers, presence and channel listings work across nodes for channels on every server', async () => {
    const channels = Array.from({ length: 8 }, (_, i) => `presence-two-${i}`);
    const { socket: a } = await join(n1.url, clients, 'two-a');
    const { socket: b } = await join(n2.url, clients, 'two-b');
    const got = { a: record(a, 'tick'), b: record(b, 'tick') };
    for (const ch of channels) {
      await subscribeOk(a, ch);
      const ack = await subscribeOk(b, ch);
      assert.deepEqual(ack.presence.ids, ['two-a', 'two-b'], `${ch}: one presence list`);
    }
    for (const [i, ch] of channels.entries()) await ok((i % 2 ? p1 : p2).trigger(ch, 'tick', { ch }), `trigger on ${ch}`);
    await waitUntil(() => got.a.length === channels.length && got.b.length === channels.length, 5000, () => `deliveries ${JSON.stringify(got)}`);
    assert.deepEqual(got.a.map((m) => m.data.ch).sort(), [...channels].sort());
    assert.deepEqual(got.b.map((m) => m.data.ch).sort(), [...channels].sort());
    const list = await ok(p2.get({ path: '/channels', params: { filter_by_prefix: 'presence-two-', info: 'user_count' } }), 'channels');
    assert.deepEqual(Object.keys(list.json.channels).sort(), [...channels].sort(), 'the listing merges every server');
  });

  test('/readyz reports an unreachable Redis server; the node keeps serving its own connections', async () => {
    const ready = await fetch(`${n1.url}/readyz`);
    assert.equal(ready.status, 200);
    // One server of the layout (a master of a cluster): every one is needed.
    const gone = redis.servers[redis.servers.length - 1];
    gone.proc.kill('SIGKILL');
    await gone.exited;
    let down;
    await waitUntil(async () => (down = await fetch(`${n1.url}/readyz`)).status === 503, 10_000, 'not ready without one server');
    const body = await down.text();
    assert.match(body, /redis/i);
    // Redis's address is for the log, not for whoever can reach /readyz (the first
    // probes time out on the pool's retries, later ones fail at the dial, naming it).
    const bodies = [body];
    for (let i = 0; i < 5; i++) {
      await sleep(200);
      bodies.push(await (await fetch(`${n1.url}/readyz`)).text());
    }
    for (const b of bodies) assert.doesNotMatch(b, new RegExp(`127\\.0\\.0\\.1|:${gone.port}\\b`), b);
    await waitUntil(() => n1.output().includes(`127.0.0.1:${gone.port}`), 10_000, 'the address in the log');
    assert.equal((await fetch(`${n1.url}/healthz`)).status, 200);
  });
});

describe(`many nodes after ${layoutName} came back empty`, { skip, timeout: 180_000 }, () => {
  let redis;
  let hooks;
  let n1;
  let n2;
  const clients = new Clients();

  before(async () => {
    redis = await startLayout(layoutName);
    hooks = await webhookReceiver();
    const env = appEnv({ ...redis.env, WEBHOOK_URL: hooks.url });
    // One after the other: the second sees the first alive when it joins, as nodes that
    // have run for a heartbeat see each other.
    n1 = await startServer(env);
    n2 = await startServer(env);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all([n1?.stop(), n2?.stop()]);
    await redis?.stop();
    hooks?.close();
  });

  test('presence, channel counts and webhooks are rebuilt from the nodes\' connections', async () => {
    const ch = 'presence-outage';
    const p1 = sdk(n1);
    const { socket: a } = await join(n1.url, clients, 'out-a');
    const { socket: b } = await join(n2.url, clients, 'out-b');
    await subscribeOk(a, ch);
    await subscribeOk(b, ch);
    await subscribeOk(a, 'out-news');
    const hookOf = (e) => `${e.name} ${e.channel}${e.user_id ? ` ${e.user_id}` : ''}`;
    await waitUntil(() => hooks.events.length >= 4, 10_000, () => `webhooks before: ${JSON.stringify(hooks.events)}`);
    assert.deepEqual(hooks.events.map(hookOf).sort(), [
      `channel_occupied out-news`, `channel_occupied ${ch}`, `member_added ${ch} out-a`, `member_added ${ch} out-b`,
    ]);
    const removed = record(a, MEMBER_REMOVED);
    const seen = hooks.events.length;

    // Redis (every server of the layout, every master of a cluster) dies and comes back
    // empty; out-b leaves while it is away.
    await redis.killAll();
    const gone = disconnected(b);
    b.close();
    await gone;
    await redis.restartEmpty();

    await waitForMatch(removed, (m) => m.user_id === 'out-b', 40_000, 'member_removed for the user who left during the outage');
    await waitUntil(() => hooks.events.slice(seen).some((e) => e.name === 'member_removed'), 10_000, 'the member_removed webhook');
    for (const n of [n1, n2]) {
      const p = sdk(n);
      const users = await ok(p.get({ path: `/channels/${ch}/users` }), 'users');
      assert.deepEqual(users.json.users.map((u) => u.id), ['out-a']);
      const list = await ok(p.get({ path: '/channels', params: { filter_by_prefix: 'out-', info: 'subscription_count' } }), 'channels');
      assert.deepEqual(list.json.channels, { 'out-news': { subscription_count: 1 } });
      const info = await ok(p.get({ path: `/channels/${ch}`, params: { info: 'subscription_count,user_count' } }), 'channel');
      assert.deepEqual(info.json, { occupied: true, subscription_count: 1, user_count: 1 });
    }
    await flush(a);
    assert.deepEqual(removed.map((m) => m.user_id), ['out-b']);
    // Only the change: nothing announced again for out-a or the channels it still holds.
    assert.deepEqual(hooks.events.slice(seen).map(hookOf), [`member_removed ${ch} out-b`]);
    // The nodes subscribed again to their channels on the restarted servers: a trigger
    // on node 2 crosses Redis to out-a on node 1.
    const after = record(a, 'after');
    await ok(sdk(n2).trigger('out-news', 'after', { n: 1 }), 'a trigger after the restart');
    await waitForMatch(after, (m) => m.data?.n === 1, 10_000, 'a trigger from the other node after the restart');
  });
});
}

describe('many-node mode refuses to start without its Redis', { skip }, () => {
  test('an unreachable REDIS_URL stops start-up with a line naming it', async () => {
    const { runServerExpectingExit } = await import('./helpers/server.mjs');
    const port = await freePort();
    const { code, output } = await runServerExpectingExit(appEnv({ REDIS_URL: `redis://127.0.0.1:${port}/0` }), 20_000);
    assert.notEqual(code, 0);
    assert.match(output, /REDIS_URL/);
  });
});
