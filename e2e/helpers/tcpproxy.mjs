// A TCP proxy of the tests' own, to cut a client off the server the way a train tunnel
// or a Wi-Fi switch does: cut() destroys every connection through it (the server sees the
// transport close, not a client disconnect) and refuses new ones until restore().
import net from 'node:net';

/**
 * startProxy forwards 127.0.0.1:<port> to target (a URL or "host:port"). url is the
 * proxy's http://127.0.0.1:<port>.
 */
export async function startProxy(target) {
  const t = new URL(typeof target === 'string' && !target.includes('://') ? `http://${target}` : String(target));
  const conns = new Set();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(t.port), t.hostname);
    const pair = { client, upstream };
    conns.add(pair);
    const end = () => {
      conns.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    /** How many connections are open through the proxy now. */
    get open() { return conns.size; },
    /** cut drops every connection (a reset on both sides) and refuses new ones. */
    cut() {
      cut = true;
      for (const { client, upstream } of conns) {
        client.resetAndDestroy?.() ?? client.destroy();
        upstream.resetAndDestroy?.() ?? upstream.destroy();
      }
      conns.clear();
    },
    /** restore lets connections through again. */
    restore() { cut = false; },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
