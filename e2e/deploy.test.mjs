// The deploy kit end to end (PRODUCT §16): nginx (Debian's package) running the repo's
// deploy/nginx.conf, in front of three jetsocket nodes on one redis-server. The config is
// used as it is; only the lines between its "upstream servers" markers (the nodes'
// addresses) and its "listen" line are rendered for the test's ports.
//
// socket.io-client (CLIENT_MAJOR: 2.x or 4.x) takes its default path through nginx:
// long-polling, then the websocket upgrade. Each client connects from its own loopback
// address (127.0.0.10, .11, ...), so nginx's hash on the client address spreads them over
// the nodes as it spreads real clients. Then: triggers through nginx reach clients on
// every node, one presence list, client events across nodes, the API and /metrics
// refused from outside their allow-lists; pusher-js on /app/ through nginx; a node
// stopped as in a rolling restart (SIGTERM: pusher-js gets close code 4200 and
// reconnects at once, socket.io clients reconnect), and a node killed mid-run (SIGKILL):
// their clients reconnect through nginx to the others and receive again.
//
// History is on (HISTORY_SIZE), and every client recovers what it missed while it moved
// (PRODUCT §14): the socket.io clients re-subscribe with `since` (their last position
// on each channel) unless socket.io-client 4.x restored the session itself
// (`socket.recovered`; it cannot across nodes, docs/history.md), and the JS client
// (public/js/jetsocket.js, two of them, also through nginx) does so by itself. Events
// triggered while a node is stopped or killed reach every client exactly once, in order.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { createRequire } from 'node:module';
import { startServer, freePort, repoRoot } from './helpers/server.mjs';
import { Clients, openSocket, request, io, CLIENT_MAJOR } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import {
  userClaims, subscribeOk, record, waitUntil, waitForMatch, clientEvent, flush,
} from './helpers/channels.mjs';
import { APP, appEnv, sdk, ok } from './helpers/pusher.mjs';
import { pusherJs, connected, subscribed, nextEvent, RawPusher } from './helpers/pusherjs.mjs';
import { REDIS, startRedis, which } from './helpers/redis.mjs';

const NGINX = which('nginx') || (which('/usr/sbin/nginx'));
// scripts/test.sh installs both: there (CI) a missing one fails instead of skipping.
const skip = (REDIS && NGINX) || process.env.CI ? false : 'redis-server or nginx not installed';

const CLIENTS = 12; // from 12 addresses: all on one of 3 nodes has a chance of 3 in 3^12
const JS_CLIENTS = 2; // the JS client, from two more addresses
const TOTAL = CLIENTS + JS_CLIENTS;
const Jetsocket = createRequire(import.meta.url)('../public/js/jetsocket.js');

/** renderNginxConf is deploy/nginx.conf with the given upstream servers and listen port. */
function renderNginxConf(text, upstreams, port) {
  const lines = text.split('\n');
  const begin = lines.findIndex((l) => l.trim() === '# BEGIN upstream servers');
  const end = lines.findIndex((l) => l.trim() === '# END upstream servers');
  assert.ok(begin >= 0 && end > begin, 'deploy/nginx.conf has the upstream servers markers');
  const indent = lines[begin].match(/^\s*/)[0];
  const servers = upstreams.map((u) => `${indent}server ${u} max_fails=1 fail_timeout=10s;`);
  const out = [...lines.slice(0, begin + 1), ...servers, ...lines.slice(end)];
  const listen = out.findIndex((l) => /^\s*listen\s.*# listen$/.test(l));
  assert.ok(listen >= 0, 'deploy/nginx.conf has a line marked "# listen"');
  out[listen] = out[listen].replace(/listen\s+[^;]+;/, `listen 127.0.0.1:${port};`);
  return out.join('\n');
}

/** until is waitUntil for a condition that is async (waitUntil takes a promise as truthy). */
async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForPort(port, what) {
  await until(() => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
    c.on('error', () => resolve(false));
  }), 10_000, what);
}


/** startNginx runs nginx in the foreground with the rendered site inside a minimal main config. */
async function startNginx(upstreams) {
  const dir = mkdtempSync(joinPath(tmpdir(), 'jetsocket-nginx-'));
  chmodSync(dir, 0o755); // a root master hands temp dirs to an unprivileged worker
  const port = await freePort();
  const site = renderNginxConf(readFileSync(joinPath(repoRoot, 'deploy', 'nginx.conf'), 'utf8'), upstreams, port);
  writeFileSync(joinPath(dir, 'jetsocket.conf'), site);
  writeFileSync(joinPath(dir, 'nginx.conf'), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/jetsocket.conf;
}
`);
  const proc = spawn(NGINX, ['-p', dir, '-c', joinPath(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  await Promise.race([
    waitForPort(port, 'nginx to listen'),
    exited.then((code) => { throw new Error(`nginx exited with ${code}:\n${out}`); }),
  ]);
  const log = () => { try { return out + readFileSync(joinPath(dir, 'error.log'), 'utf8'); } catch { return out; } };
  return { url: `http://127.0.0.1:${port}`, port, proc, log };
}

/** connections reads jetsocket_connections from a node's own /metrics (not through nginx). */
async function connections(node) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const m = /^jetsocket_connections (\d+)/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

const transportOf = (s) => s.io.engine?.transport?.name;

/** newer reports whether position b is past a (a newer epoch counts as past). */
const newer = (a, b) => !a || (b.epoch !== a.epoch) || b.offset > a.offset;

/**
 * A client on the default path from its own loopback address, reconnecting as a real one
 * does. It records each connection_established and keeps its last position on each
 * channel (from every positioned event, and from subscribe acks); after each reconnect
 * it resubscribes its channels with `since` (the server forgets subscriptions with the
 * connection) and records the acks' `recovered`, unless socket.io-client 4.x restored
 * the session (`socket.recovered`: the server subscribed it again and replays by itself).
 */
function deployClient(base, clients, i) {
  const sub = `dp-${i}`;
  const localAddress = `127.0.0.${10 + i}`;
  const agent = new http.Agent({ localAddress, keepAlive: false });
  const socket = openSocket(base, mint(userClaims(sub)), {
    agent, reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 1000,
  });
  clients.add(socket);
  const c = {
    i, sub, socket, localAddress, established: [], disconnects: [], channels: [], positions: {}, recoveries: [], restored: 0,
  };
  const seen = (ch, pos) => {
    if (ch && pos && typeof pos.offset === 'number' && newer(c.positions[ch], pos)) c.positions[ch] = { epoch: pos.epoch, offset: pos.offset };
  };
  const onevent = socket.onevent;
  socket.onevent = function (packet) {
    const p = packet.data?.[1];
    if (p && typeof p === 'object') seen(p.channel, p);
    return onevent.call(this, packet);
  };
  c.subscribe = async (ch) => {
    const since = c.positions[ch];
    const ack = await subscribeOk(socket, since ? { channel: ch, since } : ch);
    seen(ch, ack.position);
    if (since) c.recoveries.push({ ch, recovered: ack.recovered });
    return ack;
  };
  socket.on('jetsocket:connection_established', async (info) => {
    c.established.push(info);
    if (socket.recovered) c.restored++;
    else for (const ch of c.channels) await c.subscribe(ch).catch(() => {});
    c.resubscribed = c.established.length;
  });
  socket.on('disconnect', (reason) => c.disconnects.push(reason));
  c.drops = () => c.disconnects.length;
  c.settled = () => socket.connected && c.resubscribed === c.established.length && c.established.length === 1 + c.disconnects.length;
  c.record = (event) => record(socket, event);
  return c;
}

/**
 * The JS client through nginx from its own address: socket.io-client's io() with an
 * agent bound to that address, the client's own reconnection and `since` recovery.
 */
function jsClient(base, clients, i) {
  const sub = `dpjs-${i}`;
  const agent = new http.Agent({ localAddress: `127.0.0.${10 + CLIENTS + i}`, keepAlive: false });
  const ioWith = (url, opts) => io(url, { ...opts, agent });
  ioWith.Socket = io.Socket; // the client picks its transport by the io() it is given
  const js = new Jetsocket(APP.key, {
    host: base, token: () => mint(userClaims(sub)), io: ioWith, retryMinMs: 100, retryMaxMs: 500,
  });
  clients.add({ close: () => js.disconnect() });
  let drops = 0;
  const c = { sub, js, recoveries: [], channels: [], drops: () => drops };
  js.connection.bind('state_change', ({ previous }) => { if (previous === 'connected') drops++; });
  c.subscribe = (name) => {
    const ch = js.subscribe(name);
    ch.bind('jetsocket:recovery', (r) => c.recoveries.push({ ch: name, ...r }));
    c.channels.push(ch);
    return ch;
  };
  c.record = (event) => {
    const got = [];
    for (const ch of c.channels) ch.bind(event, (data, meta) => got.push({ data, offset: meta?.offset }));
    return got;
  };
  c.settled = () => js.connection.state === 'connected' && c.channels.every((ch) => ch.subscribed);
  return c;
}

describe(`deploy kit: nginx in front of three nodes (socket.io-client ${CLIENT_MAJOR}.x)`, { skip, timeout: 180_000 }, () => {
  let redis;
  let nodes = [];
  let nginx;
  let api;
  const clients = new Clients();
  const cs = [];
  const jss = [];
  const alive = () => nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);

  before(async () => {
    redis = await startRedis();
    // At most 2 connections per client address: were nginx's X-Forwarded-For lost, every
    // client would be 127.0.0.1 to the nodes and most would be refused.
    const env = appEnv({
      REDIS_URL: redis.url, TRUSTED_PROXIES: '127.0.0.1', MAX_CONNECTIONS_PER_IP: '2', LOG_LEVEL: 'warn',
      HISTORY_SIZE: '1000', // history and recovery on (the e2e helpers' default is off)
    });
    nodes = [];
    for (let i = 0; i < 3; i++) nodes.push(await startServer(env)); // one after the other: each sees the others alive
    nginx = await startNginx(nodes.map((n) => `127.0.0.1:${n.port}`));
    api = sdk(nginx);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all(nodes.map((n) => n.stop()));
    nginx?.proc.kill('SIGTERM');
    redis?.proc.kill('SIGKILL');
  });

  test('the default path (polling, then websocket) through nginx, spread over the nodes', async () => {
    for (let i = 0; i < CLIENTS; i++) cs.push(deployClient(nginx.url, clients, i));
    for (let i = 0; i < JS_CLIENTS; i++) jss.push(jsClient(nginx.url, clients, i));
    await waitUntil(() => cs.every((c) => c.established.length === 1), 20_000,
      () => `connected: ${cs.filter((c) => c.established.length).length}/${CLIENTS}\n${nginx.log()}`);
    await waitUntil(() => jss.every((c) => c.js.connection.state === 'connected'), 20_000,
      () => `JS clients: ${jss.map((c) => c.js.connection.state)}`);
    await waitUntil(() => cs.every((c) => transportOf(c.socket) === 'websocket'), 15_000,
      () => `transports: ${cs.map((c) => transportOf(c.socket))}`);
    const counts = await Promise.all(nodes.map(connections));
    assert.equal(counts.reduce((a, b) => a + b, 0), TOTAL, `per node: ${counts}`);
    assert.ok(counts.filter((n) => n > 0).length >= 2, `clients on at least two nodes: ${counts}`);
    // The nodes know each client by its address (X-Forwarded-For from nginx, trusted).
    const infos = await ok(api.get({ path: '/channels' }), 'API through nginx');
    assert.ok(infos.json.channels, JSON.stringify(infos.json));
  });

  test('a trigger through nginx reaches the clients on every node', async () => {
    for (const c of cs) { c.channels.push('dp-news'); await c.subscribe('dp-news'); }
    for (const c of jss) c.subscribe('dp-news');
    await waitUntil(() => jss.every((c) => c.settled()), 10_000, 'the JS clients subscribed');
    const got = [...cs, ...jss].map((c) => c.record('headline'));
    for (const n of [1, 2, 3]) await ok(api.trigger('dp-news', 'headline', { n }), `trigger ${n}`);
    await waitUntil(() => got.every((g) => g.length === 3), 10_000, () => `deliveries: ${got.map((g) => g.length)}`);
    await flush(...cs.map((c) => c.socket));
    // History on: each delivery carries its position, the same on every node.
    assert.ok(got.every((g) => g.every((m, k) => m.data && m.offset === got[0][k].offset)), 'positions alike on every node');
    for (const g of got) assert.deepEqual(g.map((m) => m.data.n), [1, 2, 3]);
  });

  test('one presence list across the nodes; client events cross them', async () => {
    const ch = 'presence-dp';
    const members = cs.slice(0, 4);
    const seen = [];
    for (const c of members) {
      c.channels.push(ch);
      const ack = await c.subscribe(ch);
      seen.push(c.sub);
      assert.deepEqual([...ack.presence.ids].sort(), [...seen].sort(), `presence seen by ${c.sub}`);
    }
    const users = await ok(api.get({ path: `/channels/${ch}/users` }), 'users through nginx');
    assert.deepEqual(users.json.users.map((u) => u.id).sort(), [...seen].sort());

    const heard = members.slice(1).map((c) => record(c.socket, 'client-wave'));
    const ack = await clientEvent(members[0].socket, 'client-wave', ch, { from: members[0].sub });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    await waitUntil(() => heard.every((h) => h.length === 1), 10_000, () => `client events: ${heard.map((h) => h.length)}`);
    for (const h of heard) assert.equal(h[0].user_id, members[0].sub);
  });

  test('the API and /metrics answer the allow-listed address only', async () => {
    const from = (localAddress, path) => request(`${nginx.url}${path}`, { localAddress });
    assert.equal((await from('127.0.0.1', '/metrics')).status, 200);
    assert.equal((await from('127.0.0.2', '/metrics')).status, 403);
    assert.equal((await from('127.0.0.2', '/apps/4242/channels')).status, 403);
    assert.equal((await from('127.0.0.2', '/healthz')).status, 200);
  });

  // pusher-js and a raw protocol-7 client, both from 127.0.0.1: the same address, so
  // nginx's hash puts them on the same node; the raw one shows the close code.
  let pjs;
  test('pusher-js on /app/ through nginx hears triggers from any node', async () => {
    const before = await Promise.all(nodes.map(connections));
    const p = pusherJs(nginx, { clients });
    pjs = { p, ids: [await connected(p)] };
    p.connection.bind('connected', () => pjs.ids.push(p.connection.socket_id));
    pjs.raw = clients.add(new RawPusher(nginx));
    await pjs.raw.established();
    ({ ch: pjs.ch } = await subscribed(p, 'dp-news'));
    const got = nextEvent(pjs.ch, 'headline');
    await ok(api.trigger('dp-news', 'headline', { n: 'pusher' }), 'trigger for pusher-js');
    assert.deepEqual((await got).data, { n: 'pusher' });
    let after;
    await until(async () => {
      after = await Promise.all(nodes.map(connections));
      return after.reduce((a, b) => a + b, 0) === TOTAL + 2;
    }, 5000, 'the Pusher clients counted');
    pjs.node = nodes[after.findIndex((n, i) => n === before[i] + 2)];
    assert.ok(pjs.node, `the Pusher clients' node: before ${before}, after ${after}`);
  });

  /**
   * moveOff stops `node` with `signal` and waits until the clients it held (socket.io
   * and JS clients) have reconnected through nginx (to the live nodes) and resubscribed.
   */
  async function moveOff(node, signal) {
    const all = [...cs, ...jss];
    const held = (await connections(node)) - (node === pjs.node ? 2 : 0);
    const before = new Map(all.map((c) => [c, c.drops()]));
    node.proc.kill(signal);
    const { code } = await node.exited;
    if (signal === 'SIGTERM') assert.equal(code, 0, `a graceful stop exits 0:\n${node.output()}`);
    const movedNow = () => all.filter((c) => c.drops() > before.get(c));
    await waitUntil(() => movedNow().length === held, 15_000, () => `disconnected: ${movedNow().length}, expected ${held}`);
    const moved = movedNow();
    await waitUntil(() => moved.every((c) => c.settled()), 30_000,
      () => `reconnected: ${moved.filter((c) => c.settled()).length}/${moved.length}\n${nginx.log()}`);
    for (const c of all) if (!moved.includes(c)) assert.equal(c.drops(), before.get(c), `${c.sub} kept its connection`);
    return moved;
  }

  /** allHear triggers `event` through nginx and waits until every client has it. */
  async function allHear(event) {
    const got = [...cs, ...jss].map((c) => c.record(event));
    await ok(api.trigger('dp-news', event, { ok: true }), `trigger ${event}`);
    await waitUntil(() => got.every((g) => g.length === 1), 10_000, () => `deliveries of ${event}: ${got.map((g) => g.length)}`);
  }

  /**
   * acrossTheMove triggers numbered events on dp-news, on a node that stays up, from
   * before `node` is stopped with `signal` until after its clients are back; then every
   * client must have every one of them exactly once, in order: the moved ones recover
   * what was published while they were away.
   */
  async function acrossTheMove(node, signal) {
    const all = [...cs, ...jss];
    const got = all.map((c) => c.record('seq'));
    const backend = sdk(alive().find((n) => n !== node));
    let n = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        n++;
        await ok(backend.trigger('dp-news', 'seq', { n }), `trigger seq ${n}`);
        await new Promise((r) => setTimeout(r, 25)); // pacing, not a wait for anything
      }
    })();
    try {
      await waitUntil(() => n >= 5, 10_000, 'events before the stop');
      const moved = await moveOff(node, signal);
      const mark = n;
      await waitUntil(() => n >= mark + 5, 10_000, 'events after the move');
      stop = true;
      await loop;
      const want = Array.from({ length: n }, (_, k) => k + 1);
      await waitUntil(() => got.every((g) => g.length >= n), 20_000,
        () => `seq deliveries (of ${n}): ${got.map((g) => g.length)}`);
      await flush(...cs.map((c) => c.socket));
      for (const [k, c] of all.entries()) {
        assert.deepEqual(got[k].map((m) => m.data.n), want, `${c.sub}${moved.includes(c) ? ' (moved)' : ''}: every event once, in order`);
      }
      return moved;
    } finally {
      stop = true;
      await loop.catch(() => {});
    }
  }

  const liveTotal = async () => (await Promise.all(alive().map(connections))).reduce((a, b) => a + b, 0);

  test('rolling restart: a node stopped with SIGTERM hands its clients to the others, losing nothing (Pusher clients by close 4200)', async () => {
    await acrossTheMove(pjs.node, 'SIGTERM');
    assert.equal((await pjs.raw.closed).code, 4200, 'the Pusher close code for "reconnect at once"');
    // pusher-js reconnects by itself, through nginx to a live node, and resubscribes.
    await waitUntil(() => pjs.ids.length === 2 && pjs.p.connection.state === 'connected', 15_000,
      () => `pusher-js reconnects: ids ${pjs.ids}, state ${pjs.p.connection.state}`);
    assert.notEqual(pjs.ids[1], pjs.ids[0]);
    await until(async () => (await liveTotal()) === TOTAL + 1, 10_000, 'every client on the live nodes');
    const got = nextEvent(pjs.ch, 'after-restart');
    await allHear('after-restart');
    assert.deepEqual((await got).data, { ok: true });
    pjs.p.disconnect(); // from here on, socket.io clients only: counts stay theirs
    await until(async () => (await liveTotal()) === TOTAL, 10_000, 'pusher-js gone');
  });

  test('a node killed mid-run: its clients reconnect through nginx to the others and lose nothing', async () => {
    const live = alive();
    const counts = await Promise.all(live.map(connections));
    const victim = live[counts.indexOf(Math.max(...counts))];
    assert.ok(Math.max(...counts) > 0);
    const moved = await acrossTheMove(victim, 'SIGKILL');
    assert.ok(moved.length > 0);
    await until(async () => (await liveTotal()) === TOTAL, 15_000, 'every client on the last node');
    // How they recovered: with `since` on another node (socket.io-client 4.x's own
    // session restore cannot cross nodes: the session was in the killed node's memory).
    for (const c of moved) {
      assert.equal(c.restored ?? 0, 0, `${c.sub}: no session restored on another node`);
      const last = c.recoveries.filter((r) => r.ch === 'dp-news').at(-1);
      assert.equal(last?.recovered, true, `${c.sub}: recovered with since: ${JSON.stringify(c.recoveries)}`);
    }
    await allHear('after-kill');
  });

  // socket.io-client 4.x's own connection state recovery does work through nginx when the
  // client's node is still there (a network blip): the hash on the client's address
  // brings it back to the node that keeps its session.
  test('socket.io-client 4.x: a dropped connection comes back through nginx to its node, session restored, nothing lost',
    { skip: CLIENT_MAJOR !== 4 && 'connection state recovery is socket.io-client 4.x\'s' }, async () => {
      const agent = new http.Agent({ localAddress: `127.0.0.${10 + TOTAL}`, keepAlive: false });
      const socket = clients.add(openSocket(nginx.url, mint(userClaims('dp-csr')), {
        agent, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300,
      }));
      const connects = [];
      socket.on('connect', () => connects.push({ id: socket.id, recovered: socket.recovered }));
      await waitUntil(() => connects.length === 1 && transportOf(socket) === 'websocket', 15_000, 'connected, upgraded');
      await subscribeOk(socket, 'dp-news');
      const got = record(socket, 'blip');
      const backend = sdk(alive()[0]);
      await ok(backend.trigger('dp-news', 'blip', { n: 1 }), 'blip 1');
      await waitUntil(() => got.length === 1, 10_000, 'blip 1 delivered');
      socket.io.engine.close(); // the client sees its network go and reconnects with {pid, offset}
      for (const n of [2, 3, 4]) await ok(backend.trigger('dp-news', 'blip', { n }), `blip ${n}`);
      await waitUntil(() => connects.length === 2, 15_000, 'the reconnect');
      assert.deepEqual(connects[1], { id: connects[0].id, recovered: true }, 'the same session, restored');
      await ok(backend.trigger('dp-news', 'blip', { n: 5 }), 'blip 5');
      await waitUntil(() => got.length >= 5, 10_000, () => `blips: ${got.map((m) => m.data.n)}`);
      await flush(socket);
      assert.deepEqual(got.map((m) => m.data.n), [1, 2, 3, 4, 5]);
      socket.disconnect();
    });
});
