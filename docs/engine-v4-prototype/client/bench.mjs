// Issue 17 engine evaluation: Jetsocket (go-socket.io, EIO3, socket.io-client 2.5) as the
// baseline against two EIO4 candidates (zishang520's engine, our prototype), both driven
// by socket.io-client 4.8, in one invocation. Usage:
//   node bench.mjs [runs=3] [N=2000] [reliability=200]
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import { io as io4 } from 'socket.io-client';
import io2 from 'sio2';

const RUNS = +(process.argv[2] ?? 3);
const N = +(process.argv[3] ?? 2000);
const REL = +(process.argv[4] ?? 200);
const INFLIGHT = 100;
const DELAYS = [0, 200, 1000, 3000];
const STAGGER = 75;
const SECRET = 'e2e-test-secret-0123456789abcdef0123456789abcdef';
const BIN = '/work/scratch17/bin';
const JET = '/work/wt/i17eval/.bin/jetsocket';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function mint(sub) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, name: sub, iat: now, exp: now + 3600 })}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

function freePort() {
  return new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); }); });
}

const SERVERS = {
  jetsocket: { client: 'v2', ticks: false, cmd: (port) => [JET, ['-env-file', ''], { ADDR: `127.0.0.1:${port}`, APP_ENV: 'development', JWT_SECRET: SECRET, APP_ID: '1', APP_KEY: 'key', APP_SECRET: 'secret-0123456789abcdef', MAX_CONNECTIONS_PER_IP: '0', MAX_CONNECTIONS_PER_USER: '0', LOG_LEVEL: 'warn' }] },
  gsio: { client: 'v2', ticks: true, cmd: (port) => [`${BIN}/gsio`, ['-addr', `127.0.0.1:${port}`], { JWT_SECRET: SECRET }] },
  zishang: { client: 'v4', ticks: true, cmd: (port) => [`${BIN}/zs`, ['-addr', `127.0.0.1:${port}`], { JWT_SECRET: SECRET }] },
  own: { client: 'v4', ticks: true, cmd: (port) => [`${BIN}/own`, ['-addr', `127.0.0.1:${port}`], { JWT_SECRET: SECRET }] },
};

// ONLY=a,b runs those servers only.
if (process.env.ONLY) for (const k of Object.keys(SERVERS)) if (!process.env.ONLY.split(',').includes(k)) delete SERVERS[k];

async function start(name) {
  const port = await freePort();
  const [bin, args, env] = SERVERS[name].cmd(port);
  const proc = spawn(bin, args, { cwd: mkdtempSync(`${tmpdir()}/s17-`), env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try { const r = await fetch(name === 'jetsocket' ? `${url}/healthz` : `${url}/debug/mem`); if (r.ok) break; } catch { /* not yet */ }
    await sleep(50);
  }
  return { name, url, proc, out: () => out, stop: () => new Promise((res) => { proc.on('exit', res); proc.kill('SIGKILL'); }) };
}

// cpuMs is the process's user+system CPU time so far (clock ticks of 10 ms).
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (+f[11] + +f[12]) * 10;
}

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return +m[1] * 1024;
}

async function goStats(srv) {
  if (srv.name === 'jetsocket') {
    const t = await (await fetch(`${srv.url}/metrics`)).text();
    const g = (k) => +(new RegExp(`^${k} (\\S+)$`, 'm').exec(t)?.[1] ?? NaN);
    return { heap: g('go_memstats_heap_inuse_bytes'), stack: g('go_memstats_stack_inuse_bytes'), goroutines: g('go_goroutines') };
  }
  const j = await (await fetch(`${srv.url}/debug/mem`)).json();
  return { heap: j.heap_inuse, stack: j.stack_inuse, goroutines: j.goroutines };
}

function connect(srv, sub, opts = {}) {
  const token = mint(sub);
  const common = { forceNew: true, reconnection: false, timeout: 20000, ...opts };
  const socket = SERVERS[srv.name].client === 'v2'
    ? io2(srv.url, { query: { token }, ...common })
    : io4(srv.url, { query: { token }, ...common });
  return socket;
}

function established(socket, ms = 20000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    socket.once('jetsocket:connection_established', () => { clearTimeout(t); resolve(); });
    socket.once('connect_error', (e) => { clearTimeout(t); reject(e); });
    socket.once('error', (e) => { clearTimeout(t); reject(new Error(String(e))); });
  });
}

// memPhaseGo is memPhase with the Go load client (loadgo), same code for EIO3 and EIO4.
async function memPhaseGo(srv) {
  await sleep(500);
  const rss0 = rssBytes(srv.proc.pid);
  const st0 = await goStats(srv);
  const eio = SERVERS[srv.name].client === 'v2' ? 3 : 4;
  const cpu0 = cpuMs(srv.proc.pid);
  const lg = spawn(`${BIN}/loadgo`, ['-addr', srv.url.slice(7), '-eio', String(eio), '-n', String(N), '-secret', SECRET], { stdio: ['pipe', 'pipe', 'pipe'] });
  let errs = '';
  lg.stderr.on('data', (d) => { errs += d; });
  const line = await new Promise((res) => { let o = ''; lg.stdout.on('data', (d) => { o += d; if (o.includes('\n')) res(o); }); });
  const [, n, failed, secs] = /connected (\d+) failed (\d+) seconds (\S+)/.exec(line).map(Number);
  const cpuPerConnectUs = ((cpuMs(srv.proc.pid) - cpu0) * 1000) / n;
  await sleep(5000);
  const rss1 = rssBytes(srv.proc.pid);
  const st1 = await goStats(srv);
  lg.stdin.end();
  await new Promise((res) => lg.on('exit', res));
  if (failed) console.error(errs.split('\n').slice(0, 3).join('\n'));
  return {
    connected: n, failed, connectsPerSec: n / secs, cpuPerConnectUs,
    rssPerConn: (rss1 - rss0) / n, heapPerConn: (st1.heap - st0.heap) / n,
    stackPerConn: (st1.stack - st0.stack) / n, goroutinesPerConn: (st1.goroutines - st0.goroutines) / n,
  };
}

async function memPhase(srv, opts = { transports: ['websocket'] }) {
  await sleep(500);
  const rss0 = rssBytes(srv.proc.pid);
  const st0 = await goStats(srv);
  const cpu0 = cpuMs(srv.proc.pid);
  const sockets = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < N) {
      const i = next++;
      const s = connect(srv, `mem-${i}`, opts);
      try { await established(s); sockets.push(s); } catch { failed++; s.close(); }
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const cpuPerConnectUs = ((cpuMs(srv.proc.pid) - cpu0) * 1000) / sockets.length;
  await sleep(5000);
  const transports = {};
  for (const s of sockets) { const t = s.io.engine?.transport?.name; transports[t] = (transports[t] ?? 0) + 1; }
  const rss1 = rssBytes(srv.proc.pid);
  const st1 = await goStats(srv);
  for (const s of sockets) s.close();
  const n = sockets.length;
  return {
    connected: n, failed, connectsPerSec: n / secs, cpuPerConnectUs, transports,
    rssPerConn: (rss1 - rss0) / n, heapPerConn: (st1.heap - st0.heap) / n,
    stackPerConn: (st1.stack - st0.stack) / n, goroutinesPerConn: (st1.goroutines - st0.goroutines) / n,
  };
}

async function lifeOfAClient(srv, i) {
  const problems = [];
  const s = connect(srv, `rel-${i}`);
  const ticks = new Set();
  s.on('tick', (d) => ticks.add(d.n));
  let disconnected = null;
  try { await established(s); } catch (e) { s.close(); return { problems: [`connect: ${e.message}`], lost: DELAYS.length * 2 }; }
  s.on('disconnect', (r) => { disconnected = r; });
  const start = Date.now();
  let lost = 0;
  for (const d of DELAYS) {
    await sleep(Math.max(0, start + d - Date.now()));
    const ok = await new Promise((res) => { const t = setTimeout(() => res(false), 5000); s.emit('jetsocket:ping', (a) => { clearTimeout(t); res(a?.pong === true); }); });
    if (!ok) { lost++; problems.push(`ping@${d}`); }
  }
  if (SERVERS[srv.name].ticks) {
    await sleep(500);
    for (let n = 0; n < DELAYS.length; n++) if (!ticks.has(n)) { lost++; problems.push(`tick${n}`); }
  }
  if (disconnected) problems.push(`disconnect: ${disconnected}`);
  const transport = s.io.engine?.transport?.name;
  if (problems.length) problems.push(`final transport ${transport}, ticks seen ${[...ticks].join('')}`);
  s.close();
  return { problems, lost, transport };
}

async function relPhase(srv, stagger = STAGGER) {
  const res = await Promise.all(Array.from({ length: REL }, async (_, i) => { await sleep(i * stagger); return lifeOfAClient(srv, i); }));
  const bad = res.filter((r) => r.problems.length);
  const transports = {};
  for (const r of res) transports[r.transport ?? 'none'] = (transports[r.transport ?? 'none'] ?? 0) + 1;
  return { clients: REL, clientsWithLoss: bad.length, messagesLost: res.reduce((a, r) => a + (r.lost ?? 0), 0), transports, examples: bad.slice(0, 3).map((r) => r.problems.join(',')) };
}

// RELONLY=1: only the reliability phases (staggered and burst), RUNS times per server.
if (process.env.RELONLY) {
  const tot = {};
  for (let run = 0; run < RUNS; run++) {
    for (const name of Object.keys(SERVERS)) {
      for (const stagger of (process.env.BURSTONLY ? [0] : [STAGGER, 0])) {
        const srv = await start(name);
        const r = await relPhase(srv, stagger);
        await srv.stop();
        const k = `${name} ${stagger ? 'staggered' : 'burst'}`;
        tot[k] ??= { clients: 0, clientsWithLoss: 0, messagesLost: 0, examples: [] };
        tot[k].clients += r.clients; tot[k].clientsWithLoss += r.clientsWithLoss; tot[k].messagesLost += r.messagesLost;
        tot[k].examples.push(...r.examples);
        console.log(JSON.stringify({ run, name, stagger, ...r }));
      }
    }
  }
  for (const [k, v] of Object.entries(tot)) console.log(`${k.padEnd(22)} ${v.clientsWithLoss}/${v.clients} clients with loss, ${v.messagesLost} messages lost ${JSON.stringify(v.examples.slice(0, 3))}`);
  process.exit(0);
}

const results = [];
for (let run = 0; run < RUNS; run++) {
  const order = Object.keys(SERVERS);
  for (let k = 0; k < run % order.length; k++) order.push(order.shift()); // rotate the order per run
  for (const name of order) {
    let srv = await start(name);
    const memGo = await memPhaseGo(srv);
    await srv.stop();
    srv = await start(name);
    const mem = await memPhase(srv);
    await sleep(1000);
    await srv.stop();
    srv = await start(name);
    const memDefault = await memPhase(srv, {});
    await sleep(1000);
    await srv.stop();
    srv = await start(name);
    const rel = await relPhase(srv);
    await srv.stop();
    srv = await start(name);
    const burst = await relPhase(srv, 0);
    await srv.stop();
    const r = { run, name, ...mem, go: memGo, def: memDefault, rel, burst };
    results.push(r);
    console.log(JSON.stringify(r));
  }
}
const fmt = (x) => Math.round(x);
console.log('\nper run: ratios against jetsocket (v2) of the same run');
for (let run = 0; run < RUNS; run++) {
  const base = results.find((r) => r.run === run && r.name === 'jetsocket');
  for (const r of results.filter((x) => x.run === run)) {
    const g = r.go, bg = base.go;
    console.log(`run ${run} ${r.name.padEnd(9)} GO CLIENT rss/conn ${fmt(g.rssPerConn)} (${(g.rssPerConn / bg.rssPerConn).toFixed(2)}x) heap/conn ${fmt(g.heapPerConn)} (${(g.heapPerConn / bg.heapPerConn).toFixed(2)}x) stack/conn ${fmt(g.stackPerConn)} goroutines/conn ${g.goroutinesPerConn.toFixed(2)} connects/s ${fmt(g.connectsPerSec)} (${(g.connectsPerSec / bg.connectsPerSec).toFixed(2)}x) server CPU/connect ${fmt(g.cpuPerConnectUs)}us (${(g.cpuPerConnectUs / bg.cpuPerConnectUs).toFixed(2)}x) failed ${g.failed}`);
    const d = r.def, bd = base.def;
    console.log(`run ${run} ${r.name.padEnd(9)} JS DEFAULT PATH rss/conn ${fmt(d.rssPerConn)} (${(d.rssPerConn / bd.rssPerConn).toFixed(2)}x) heap/conn ${fmt(d.heapPerConn)} (${(d.heapPerConn / bd.heapPerConn).toFixed(2)}x) goroutines/conn ${d.goroutinesPerConn.toFixed(2)} connects/s ${fmt(d.connectsPerSec)} (${(d.connectsPerSec / bd.connectsPerSec).toFixed(2)}x) failed ${d.failed} final ${JSON.stringify(d.transports)}`);
    console.log(`run ${run} ${r.name.padEnd(9)} JS CLIENT rss/conn ${fmt(r.rssPerConn)} (${(r.rssPerConn / base.rssPerConn).toFixed(2)}x) heap/conn ${fmt(r.heapPerConn)} (${(r.heapPerConn / base.heapPerConn).toFixed(2)}x) stack/conn ${fmt(r.stackPerConn)} goroutines/conn ${r.goroutinesPerConn.toFixed(2)} connects/s ${fmt(r.connectsPerSec)} (${(r.connectsPerSec / base.connectsPerSec).toFixed(2)}x) failed ${r.failed} | reliability: ${r.rel.clientsWithLoss}/${r.rel.clients} clients lost ${r.rel.messagesLost} msgs, final ${JSON.stringify(r.rel.transports)}; burst of ${r.burst.clients} at once: ${r.burst.clientsWithLoss} clients lost ${r.burst.messagesLost} msgs ${JSON.stringify(r.burst.examples)}`);
  }
}
process.exit(0);
