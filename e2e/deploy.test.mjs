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
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { startServer, freePort, repoRoot } from './helpers/server.mjs';
import { Clients, openSocket, request, CLIENT_MAJOR } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import {
  userClaims, subscribeOk, record, waitUntil, waitForMatch, clientEvent, flush,
} from './helpers/channels.mjs';
import { appEnv, sdk, ok } from './helpers/pusher.mjs';
import { pusherJs, connected, subscribed, nextEvent, RawPusher } from './helpers/pusherjs.mjs';
import { REDIS, startRedis, which } from './helpers/redis.mjs';

const NGINX = which('nginx') || (which('/usr/sbin/nginx'));
// scripts/test.sh installs both: there (CI) a missing one fails instead of skipping.
const skip = (REDIS && NGINX) || process.env.CI ? false : 'redis-server or nginx not installed';

const CLIENTS = 12; // from 12 addresses: all on one of 3 nodes has a chance of 3 in 3^12

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

/**
 * A client on the default path from its own loopback address, reconnecting as a real one
 * does. It records each connection_established, and resubscribes its channels after
 * each reconnect (the server forgets subscriptions with the connection).
 */
function deployClient(base, clients, i) {
  const sub = `dp-${i}`;
  const localAddress = `127.0.0.${10 + i}`;
  const agent = new http.Agent({ localAddress, keepAlive: false });
  const socket = openSocket(base, mint(userClaims(sub)), {
    agent, reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 1000,
  });
  clients.add(socket);
  const c = { i, sub, socket, localAddress, established: [], disconnects: [], channels: [] };
  socket.on('jetsocket:connection_established', async (info) => {
    c.established.push(info);
    for (const ch of c.channels) await subscribeOk(socket, ch).catch(() => {});
    c.resubscribed = c.established.length;
  });
  socket.on('disconnect', (reason) => c.disconnects.push(reason));
  return c;
}

describe(`deploy kit: nginx in front of three nodes (socket.io-client ${CLIENT_MAJOR}.x)`, { skip, timeout: 180_000 }, () => {
  let redis;
  let nodes = [];
  let nginx;
  let api;
  const clients = new Clients();
  const cs = [];
  const alive = () => nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);

  before(async () => {
    redis = await startRedis();
    // At most 2 connections per client address: were nginx's X-Forwarded-For lost, every
    // client would be 127.0.0.1 to the nodes and most would be refused.
    const env = appEnv({
      REDIS_URL: redis.url, TRUSTED_PROXIES: '127.0.0.1', MAX_CONNECTIONS_PER_IP: '2', LOG_LEVEL: 'warn',
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
    await waitUntil(() => cs.every((c) => c.established.length === 1), 20_000,
      () => `connected: ${cs.filter((c) => c.established.length).length}/${CLIENTS}\n${nginx.log()}`);
    await waitUntil(() => cs.every((c) => transportOf(c.socket) === 'websocket'), 15_000,
      () => `transports: ${cs.map((c) => transportOf(c.socket))}`);
    const counts = await Promise.all(nodes.map(connections));
    assert.equal(counts.reduce((a, b) => a + b, 0), CLIENTS, `per node: ${counts}`);
    assert.ok(counts.filter((n) => n > 0).length >= 2, `clients on at least two nodes: ${counts}`);
    // The nodes know each client by its address (X-Forwarded-For from nginx, trusted).
    const infos = await ok(api.get({ path: '/channels' }), 'API through nginx');
    assert.ok(infos.json.channels, JSON.stringify(infos.json));
  });

  test('a trigger through nginx reaches the clients on every node', async () => {
    for (const c of cs) { c.channels.push('dp-news'); await subscribeOk(c.socket, 'dp-news'); }
    const got = cs.map((c) => record(c.socket, 'headline'));
    for (const n of [1, 2, 3]) await ok(api.trigger('dp-news', 'headline', { n }), `trigger ${n}`);
    await waitUntil(() => got.every((g) => g.length === 3), 10_000, () => `deliveries: ${got.map((g) => g.length)}`);
    await flush(...cs.map((c) => c.socket));
    for (const g of got) assert.deepEqual(g.map((m) => m.data.n), [1, 2, 3]);
  });

  test('one presence list across the nodes; client events cross them', async () => {
    const ch = 'presence-dp';
    const members = cs.slice(0, 4);
    const seen = [];
    for (const c of members) {
      c.channels.push(ch);
      const ack = await subscribeOk(c.socket, ch);
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
      return after.reduce((a, b) => a + b, 0) === CLIENTS + 2;
    }, 5000, 'the Pusher clients counted');
    pjs.node = nodes[after.findIndex((n, i) => n === before[i] + 2)];
    assert.ok(pjs.node, `the Pusher clients' node: before ${before}, after ${after}`);
  });

  /**
   * moveOff stops `node` with `signal` and waits until the socket.io clients it held
   * have reconnected through nginx (to the live nodes) and resubscribed.
   */
  async function moveOff(node, signal) {
    const held = (await connections(node)) - (node === pjs.node ? 2 : 0);
    const before = new Map(cs.map((c) => [c, c.disconnects.length]));
    node.proc.kill(signal);
    const { code } = await node.exited;
    if (signal === 'SIGTERM') assert.equal(code, 0, `a graceful stop exits 0:\n${node.output()}`);
    const movedNow = () => cs.filter((c) => c.disconnects.length > before.get(c));
    await waitUntil(() => movedNow().length === held, 15_000, () => `disconnected: ${movedNow().length}, expected ${held}`);
    const moved = movedNow();
    await waitUntil(() => moved.every((c) => c.socket.connected && c.resubscribed === c.established.length
      && c.established.length === 1 + c.disconnects.length), 30_000,
    () => `reconnected: ${moved.filter((c) => c.socket.connected).length}/${moved.length}\n${nginx.log()}`);
    for (const c of cs) if (!moved.includes(c)) assert.equal(c.disconnects.length, before.get(c), `${c.sub} kept its connection`);
    return moved;
  }

  /** allHear triggers `event` through nginx and waits until every socket.io client has it. */
  async function allHear(event) {
    const got = cs.map((c) => record(c.socket, event));
    await ok(api.trigger('dp-news', event, { ok: true }), `trigger ${event}`);
    await waitUntil(() => got.every((g) => g.length === 1), 10_000, () => `deliveries of ${event}: ${got.map((g) => g.length)}`);
  }

  const liveTotal = async () => (await Promise.all(alive().map(connections))).reduce((a, b) => a + b, 0);

  test('rolling restart: a node stopped with SIGTERM hands its clients to the others (Pusher clients by close 4200)', async () => {
    await moveOff(pjs.node, 'SIGTERM');
    assert.equal((await pjs.raw.closed).code, 4200, 'the Pusher close code for "reconnect at once"');
    // pusher-js reconnects by itself, through nginx to a live node, and resubscribes.
    await waitUntil(() => pjs.ids.length === 2 && pjs.p.connection.state === 'connected', 15_000,
      () => `pusher-js reconnects: ids ${pjs.ids}, state ${pjs.p.connection.state}`);
    assert.notEqual(pjs.ids[1], pjs.ids[0]);
    await until(async () => (await liveTotal()) === CLIENTS + 1, 10_000, 'every client on the live nodes');
    const got = nextEvent(pjs.ch, 'after-restart');
    await allHear('after-restart');
    assert.deepEqual((await got).data, { ok: true });
    pjs.p.disconnect(); // from here on, socket.io clients only: counts stay theirs
    await until(async () => (await liveTotal()) === CLIENTS, 10_000, 'pusher-js gone');
  });

  test('a node killed mid-run: its clients reconnect through nginx to the others and receive again', async () => {
    const live = alive();
    const counts = await Promise.all(live.map(connections));
    const victim = live[counts.indexOf(Math.max(...counts))];
    assert.ok(Math.max(...counts) > 0);
    await moveOff(victim, 'SIGKILL');
    await until(async () => (await liveTotal()) === CLIENTS, 15_000, 'every client on the last node');
    await allHear('after-kill');
  });
});
