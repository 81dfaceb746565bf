// SIGTERM: a graceful stop that closes client connections and exits 0.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { mint } from './helpers/jwt.mjs';
import { connect, ping, sleep, waitFor, withTimeout, Clients } from './helpers/clients.mjs';

describe('SIGTERM', () => {
  test('exits 0 within a few seconds and connected clients see a disconnect', async () => {
    const srv = await startServer();
    const clients = new Clients();
    try {
      const conns = await Promise.all([
        connect(srv.url, mint({ sub: 'a' }), { clients }),
        connect(srv.url, mint({ sub: 'b' }), { clients, transports: ['websocket'] }),
        connect(srv.url, mint({ sub: 'c' }), { clients, transports: ['polling'] }),
      ]);
      await sleep(500); // let the default client finish its upgrade (reliability.test.mjs covers emits during it)
      for (const { socket } of conns) assert.equal((await ping(socket)).pong, true);
      const disconnects = conns.map(({ socket }) => waitFor(socket, 'disconnect', 10_000));

      srv.proc.kill('SIGTERM');
      const { code, signal } = await withTimeout(srv.exited, 10_000, 'process exit after SIGTERM');
      assert.equal(signal, null, 'exited by itself, not by the signal');
      assert.equal(code, 0, `exit code; output:\n${srv.output()}`);

      const reasons = await Promise.all(disconnects);
      assert.equal(reasons.length, 3);
      assert.doesNotMatch(srv.output(), /panic|goroutine \d+ \[/);
    } finally {
      clients.closeAll();
      await srv.stop();
    }
  });

  test('an idle server exits 0 on SIGTERM and SIGINT', async () => {
    for (const sig of ['SIGTERM', 'SIGINT']) {
      const srv = await startServer();
      try {
        srv.proc.kill(sig);
        const { code, signal } = await withTimeout(srv.exited, 10_000, `exit after ${sig}`);
        assert.equal(signal, null, `${sig}: exited by itself`);
        assert.equal(code, 0, `${sig}: exit code; output:\n${srv.output()}`);
      } finally { await srv.stop(); }
    }
  });
});
