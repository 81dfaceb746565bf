// A TCP proxy of the tests' own, to cut a client off the way a train tunnel or a Wi-Fi
// switch does: drop() destroys every connection through it at once (neither side gets a
// clean close from the other, the server sees the transport go, not a client disconnect);
// refuse(ms) also closes the listening port for a while; cut() drops everything and
// refuses new connections (accepted and destroyed) until restore(). Reconnection
// attempts fail meanwhile and succeed after, on the same port.
import net from 'node:net';

/**
 * startProxy listens on a free loopback port and forwards every connection to target: a
 * port on 127.0.0.1, or a URL / "host:port". Resolves {port, url, drop(), refuse(ms),
 * cut(), restore(), close(), connections()}.
 */
export async function startProxy(target) {
  const to = typeof target === 'number'
    ? { host: '127.0.0.1', port: target }
    : (() => { const u = new URL(String(target).includes('://') ? String(target) : `http://${target}`); return { host: u.hostname, port: Number(u.port) }; })();
  const conns = new Set();
  const pairs = new Set();
  let server;
  let port = 0;
  let closed = false;
  let cut = false;

  function listen() {
    server = net.createServer((client) => {
      if (cut) {
        client.destroy();
        return;
      }
      const upstream = net.connect(to.port, to.host);
      conns.add(client);
      conns.add(upstream);
      const gone = () => {
        client.destroy();
        upstream.destroy();
        conns.delete(client);
        conns.delete(upstream);
      };
      client.on('error', gone);
      upstream.on('error', gone);
      client.on('close', gone);
      upstream.on('close', gone);
      client.pipe(upstream);
      upstream.pipe(client);
      pairs.add({ client, upstream, gone });
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = server.address().port;
        resolve();
      });
    });
  }

  function drop() {
    for (const c of conns) c.destroy();
    conns.clear();
  }

  await listen();
  return {
    get port() { return port; },
    get url() { return `http://127.0.0.1:${port}`; },
    connections: () => conns.size / 2,
    drop,
    /** refuse drops everything and refuses connections for `ms`, then listens again. */
    async refuse(ms) {
      await new Promise((resolve) => { server.close(() => resolve()); drop(); });
      await new Promise((r) => setTimeout(r, ms));
      if (!closed) await listen();
    },
    /** cut drops everything and refuses connections until restore(). */
    cut() {
      cut = true;
      drop();
    },
    restore() { cut = false; },
    /**
     * stall freezes the connections open now, the way a network switch leaves them: no
     * byte goes through either way, and when the client side closes the server side is
     * not told (it stays open, silent, until the server's ping timeout). New connections
     * go through.
     */
    stall() {
      for (const { client, upstream, gone } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.off('close', gone).off('error', gone);
        client.on('error', () => {});
        upstream.pause();
        client.on('close', () => conns.delete(client));
      }
      pairs.clear();
    },
    close() {
      closed = true;
      drop();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
