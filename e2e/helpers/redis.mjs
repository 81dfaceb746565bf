// Throwaway redis-servers for the many-node suites (cluster, history, watchlist, deploy):
// one server, or a whole layout (one Redis, two independent servers, a Redis Cluster of
// three masters) that a suite can stop and start again empty.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from './channels.mjs';
import { freePort } from './server.mjs';

/** which is the path of an installed program, or ''. */
export function which(bin) {
  try { return execFileSync('sh', ['-c', `command -v ${bin}`]).toString().trim(); } catch { return ''; }
}

export const REDIS = which('redis-server');
export const REDIS_CLI = which('redis-cli');
// CI installs redis-server (scripts/test.sh): there a missing one fails instead of skipping.
export const redisSkip = REDIS || process.env.CI ? false : 'redis-server not installed';

// Every redis-server started here, killed when the test process exits whatever failed
// (node --test runs each file in its own process).
const running = new Set();
process.on('exit', () => { for (const p of running) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

const listening = (port) => new Promise((resolve) => {
  const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
  c.on('error', () => resolve(false));
});

/**
 * startRedis runs redis-server without persistence (on port, or a free one) once it
 * listens. `cluster: {bus, dir}` makes it a Redis Cluster node with its nodes.conf in
 * dir (so that started again with the same dir it keeps its slots and peers).
 */
export async function startRedis(port, { cluster } = {}) {
  if (!REDIS) throw new Error('redis-server not installed (scripts/test.sh installs it)');
  port ??= await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  if (cluster) {
    args.push('--cluster-enabled', 'yes', '--cluster-port', String(cluster.bus),
      '--cluster-config-file', 'nodes.conf', '--dir', cluster.dir);
  }
  const proc = spawn(REDIS, args, { stdio: 'ignore' });
  running.add(proc);
  const exited = new Promise((resolve) => proc.once('exit', () => { running.delete(proc); resolve(); }));
  await waitUntil(() => listening(port), 10_000, 'redis-server to listen');
  return { url: `redis://127.0.0.1:${port}/0`, proc, port, exited };
}

/** cli runs redis-cli with args and resolves its output. */
function cli(args) {
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI, args, { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`redis-cli ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`)) : resolve(stdout)));
  });
}

async function clusterOK(servers) {
  await waitUntil(async () => {
    for (const s of servers) {
      const info = await cli(['-p', String(s.port), 'cluster', 'info']).catch(() => '');
      if (!info.includes('cluster_state:ok')) return false;
    }
    return true;
  }, 30_000, 'the Redis Cluster to be ok');
}

/** LAYOUTS are the Redis layouts many-node mode runs on (docs/many-nodes.md). */
export const LAYOUTS = ['one Redis', 'two Redis servers', 'Redis Cluster'];

/**
 * startLayout starts a Redis layout (one of LAYOUTS) and returns
 * {name, env (REDIS_URL and REDIS_CLUSTER for the nodes), envReversed (the same servers
 * listed in another order), servers, killAll(), restartEmpty(), stop()}.
 * restartEmpty kills every server and starts them again on their ports without their
 * data; a cluster's masters keep their nodes.conf, so the cluster comes back with its
 * slots, empty. stop kills everything and removes the cluster's files.
 */
export async function startLayout(name) {
  const count = name === 'one Redis' ? 1 : name === 'two Redis servers' ? 2 : 3;
  const isCluster = name === 'Redis Cluster';
  if (isCluster && !REDIS_CLI) throw new Error('redis-cli not installed (it comes with redis-server)');
  const dirs = [];
  const opts = [];
  for (let i = 0; i < count; i++) {
    if (isCluster) {
      dirs.push(mkdtempSync(join(tmpdir(), 'jetsocket-redis-cluster-')));
      opts.push({ cluster: { bus: await freePort(), dir: dirs[i] } });
    } else opts.push({});
  }
  let servers = [];
  const layout = {
    name,
    get servers() { return servers; },
    killAll: async () => {
      for (const s of servers) s.proc.kill('SIGKILL');
      await Promise.all(servers.map((s) => s.exited));
    },
    restartEmpty: async () => {
      await layout.killAll();
      servers = await Promise.all(servers.map((s, i) => startRedis(s.port, opts[i])));
      if (isCluster) await clusterOK(servers);
    },
    stop: async () => {
      await layout.killAll();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
  try {
    servers = await Promise.all(opts.map((o) => startRedis(undefined, o)));
    if (isCluster) {
      await cli(['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes']);
      await clusterOK(servers);
    }
  } catch (err) {
    await layout.stop();
    throw err;
  }
  const urls = servers.map((s) => s.url);
  const extra = isCluster ? { REDIS_CLUSTER: 'true' } : {};
  layout.env = { REDIS_URL: urls.join(','), ...extra };
  // Another order, with a space: nodes need not list the servers alike.
  layout.envReversed = { REDIS_URL: [...urls].reverse().join(', '), ...extra };
  return layout;
}
