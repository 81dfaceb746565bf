// TLS_CERT_FILE/TLS_KEY_FILE serve HTTPS and WSS: socket.io-client (CLIENT_MAJOR) connects over
// both transports with a certificate the test makes (openssl, Debian's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSocket, CLIENT_LABEL } from './helpers/clients.mjs';
import { startServer } from './helpers/server.mjs';
import { mint } from './helpers/jwt.mjs';

test(`${CLIENT_LABEL} connects over https/wss`, { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'jetsocket-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  // startServer waits on http://.../healthz, which a TLS port does not answer.
  const srv = await startServer({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key }, { waitReady: false });
  t.after(() => srv.stop());
  const url = `https://127.0.0.1:${srv.port}`;
  const ca = readFileSync(cert);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (srv.output().includes('jetsocket listening')) break;
    assert.ok(Date.now() < deadline, `server not ready:\n${srv.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const transports of [['polling', 'websocket'], ['websocket']]) {
    const socket = openSocket(url, mint({ sub: 'tls-user' }), { transports, ca });
    try {
      const est = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timeout')), 10_000);
        socket.on('jetsocket:connection_established', (d) => { clearTimeout(timer); resolve(d); });
        socket.on('connect_error', (e) => { clearTimeout(timer); reject(e); });
      });
      assert.equal(est.user_id, 'tls-user');
      assert.match(est.socket_id, /^\d+\.\d+$/);
      const pong = await new Promise((resolve) => socket.emit('jetsocket:ping', resolve));
      assert.equal(pong.pong, true, `ping over ${transports.join('+')}`);
    } finally {
      socket.close();
    }
  }
});
