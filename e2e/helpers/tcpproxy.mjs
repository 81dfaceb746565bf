// A TCP proxy of the test's own, to cut a client off the way a train tunnel or a Wi-Fi
// switch does: drop() destroys every connection through it at once (neither side gets a
// clean close from the other), refuse(ms) also closes the listening port for a while, so
// that reconnection attempts fail until it opens again on the same port.
import net from 'node:net';

/**
 * startProxy listens on a free loopback port and forwards every connection to
 * 127.0.0.1:`targetPort`. Resolves {port, url, drop(), refuse(ms), close(), connections()}.
 */
export async function startProxy(targetPort) {
  const conns = new Set();
  let server;
  let port = 0;
  let closed = false;

  function listen() {
    server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
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
    close() {
      closed = true;
      drop();
      server.close();
    },
  };
}
