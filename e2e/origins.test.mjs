// ALLOWED_ORIGINS and CORS (PRODUCT §2, §10: "CORS for polling and websocket origin checks are
// not automatic"): foreign origins are refused with 403 JSON on both transports.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { mint } from './helpers/jwt.mjs';
import {
  connect, ping, request, wsHandshake, socketPath, refusalStatus, Clients,
} from './helpers/clients.mjs';
import { assertJsonError } from './helpers/assert.mjs';

const ALLOWED = 'http://allowed.example';
const EVIL = 'http://evil.example';

/** pollingHandshake does the engine.io polling handshake GET with a valid token. */
const pollingHandshake = (srv, headers = {}) => request(socketPath(srv.url, { token: mint() }), { headers });

/** websocketHandshake tries the upgrade with a valid token and the given Origin. */
async function websocketHandshake(srv, origin) {
  const res = await wsHandshake(socketPath(srv.url, { transport: 'websocket', token: mint() }), { origin });
  if (res.ws) {
    res.ws.terminate();
    return { upgraded: true };
  }
  return res;
}

describe('ALLOWED_ORIGINS=http://allowed.example', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({ ALLOWED_ORIGINS: ALLOWED }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('polling handshake from a foreign origin -> 403 origin_not_allowed', async () => {
    const res = await pollingHandshake(srv, { origin: EVIL });
    assertJsonError(res, 403, 'origin_not_allowed', 'polling, Origin evil');
    assert.notEqual(res.headers['access-control-allow-origin'], EVIL);
    assert.notEqual(res.headers['access-control-allow-origin'], '*');
  });

  test('websocket handshake from a foreign origin -> 403 origin_not_allowed', async () => {
    const res = await websocketHandshake(srv, EVIL);
    assert.ok(!res.upgraded, 'upgrade from a foreign origin was accepted');
    assertJsonError(res, 403, 'origin_not_allowed', 'websocket, Origin evil');
  });

  test('an origin that only starts like the allowed one is refused', async () => {
    for (const origin of [`${ALLOWED}.evil.example`, 'https://allowed.example', `${ALLOWED}:8443`, 'null']) {
      const res = await pollingHandshake(srv, { origin });
      assertJsonError(res, 403, 'origin_not_allowed', `Origin ${origin}`);
    }
  });

  test('polling handshake from the allowed origin succeeds with CORS headers', async () => {
    const res = await pollingHandshake(srv, { origin: ALLOWED });
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /"sid"/, 'engine.io open packet');
    assert.equal(res.headers['access-control-allow-origin'], ALLOWED);
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
  });

  test('websocket handshake from the allowed origin upgrades', async () => {
    const res = await websocketHandshake(srv, ALLOWED);
    assert.ok(res.upgraded, `refused: ${res.status} ${res.text}`);
  });

  test('socket.io-client (websocket) sending the allowed Origin connects and pings', async () => {
    const { socket } = await connect(srv.url, mint(), {
      clients, transports: ['websocket'], extraHeaders: { Origin: ALLOWED },
    });
    assert.equal((await ping(socket)).pong, true);
  });

  test('socket.io-client (websocket) sending a foreign Origin is refused', async () => {
    await assert.rejects(
      connect(srv.url, mint(), { transports: ['websocket'], extraHeaders: { Origin: EVIL } }),
      (err) => refusalStatus(err) === 403 || /403/.test(err.message),
    );
  });

  test('OPTIONS preflight from the allowed origin -> 204 with CORS headers', async () => {
    const res = await request(socketPath(srv.url, { token: mint() }), {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    assert.equal(res.status, 204, res.text);
    assert.equal(res.headers['access-control-allow-origin'], ALLOWED);
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.match(String(res.headers['access-control-allow-methods']), /POST/i);
  });

  test('OPTIONS preflight from a foreign origin gets no CORS grant', async () => {
    const res = await request(socketPath(srv.url, { token: mint() }), {
      method: 'OPTIONS',
      headers: { origin: EVIL, 'access-control-request-method': 'POST' },
    });
    assert.ok(res.status >= 400, `preflight from ${EVIL} answered ${res.status}`);
    assert.notEqual(res.headers['access-control-allow-origin'], EVIL);
    assert.notEqual(res.headers['access-control-allow-origin'], '*');
  });

  test('no Origin header (a Node or native client) is allowed', async () => {
    const res = await pollingHandshake(srv);
    assert.equal(res.status, 200, res.text);
    const { socket } = await connect(srv.url, mint(), { clients, transports: ['websocket'] });
    assert.equal((await ping(socket)).pong, true);
  });

  test('a bad token from the allowed origin is still 401', async () => {
    const res = await request(socketPath(srv.url, { token: 'bad' }), { headers: { origin: ALLOWED } });
    assertJsonError(res, 401, 'invalid_token', 'allowed origin, bad token');
  });
});

describe('ALLOWED_ORIGINS unset: same origin only', () => {
  let srv;
  before(async () => { srv = await startServer({ ALLOWED_ORIGINS: undefined }); });
  after(async () => { await srv?.stop(); });

  test('Origin equal to the Host is allowed (polling and websocket)', async () => {
    const origin = `http://127.0.0.1:${srv.port}`;
    const res = await pollingHandshake(srv, { origin });
    assert.equal(res.status, 200, res.text);
    const ws = await websocketHandshake(srv, origin);
    assert.ok(ws.upgraded, `refused: ${ws.status} ${ws.text}`);
  });

  test('a foreign Origin is refused with 403 (polling and websocket)', async () => {
    const res = await pollingHandshake(srv, { origin: EVIL });
    assertJsonError(res, 403, 'origin_not_allowed', 'polling, default origins');
    const ws = await websocketHandshake(srv, EVIL);
    assert.ok(!ws.upgraded, 'foreign upgrade accepted');
    assertJsonError(ws, 403, 'origin_not_allowed', 'websocket, default origins');
  });

  test('same host on another port is another origin', async () => {
    const res = await pollingHandshake(srv, { origin: `http://127.0.0.1:${srv.port + 1}` });
    assertJsonError(res, 403, 'origin_not_allowed', 'other port');
  });

  test('no Origin header is allowed', async () => {
    const res = await pollingHandshake(srv);
    assert.equal(res.status, 200, res.text);
  });
});

describe('ALLOWED_ORIGINS lists and * (development)', () => {
  test('a comma list (with spaces) allows each listed origin and nothing else', async () => {
    const srv = await startServer({ ALLOWED_ORIGINS: 'http://a.example, http://b.example' });
    try {
      for (const origin of ['http://a.example', 'http://b.example']) {
        const res = await pollingHandshake(srv, { origin });
        assert.equal(res.status, 200, `${origin}: ${res.text}`);
        assert.equal(res.headers['access-control-allow-origin'], origin);
      }
      assertJsonError(await pollingHandshake(srv, { origin: 'http://c.example' }), 403, 'origin_not_allowed', 'unlisted');
    } finally { await srv.stop(); }
  });

  test('* allows any origin and echoes it (a literal * cannot carry credentials)', async () => {
    const srv = await startServer({ ALLOWED_ORIGINS: '*' });
    try {
      const res = await pollingHandshake(srv, { origin: EVIL });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['access-control-allow-origin'], EVIL);
      assert.equal(res.headers['access-control-allow-credentials'], 'true');
      const ws = await websocketHandshake(srv, EVIL);
      assert.ok(ws.upgraded, `refused: ${ws.status} ${ws.text}`);
    } finally { await srv.stop(); }
  });
});
