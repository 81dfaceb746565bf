// A throwaway redis-server for the many-node suites (cluster, history, watchlist, deploy).
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { waitUntil } from './channels.mjs';
import { freePort } from './server.mjs';

/** which is the path of an installed program, or ''. */
export function which(bin) {
  try { return execFileSync('sh', ['-c', `command -v ${bin}`]).toString().trim(); } catch { return ''; }
}

export const REDIS = which('redis-server');
// CI installs redis-server (scripts/test.sh): there a missing one fails instead of skipping.
export const redisSkip = REDIS || process.env.CI ? false : 'redis-server not installed';

/** startRedis runs redis-server without persistence (on port, or a free one) once it listens. */
export async function startRedis(port) {
  if (!REDIS) throw new Error('redis-server not installed (scripts/test.sh installs it)');
  port ??= await freePort();
  const proc = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitUntil(() => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
    c.on('error', () => resolve(false));
  }), 10_000, 'redis-server to listen');
  return { url: `redis://127.0.0.1:${port}/0`, proc, port };
}
