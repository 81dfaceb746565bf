// The socket.io handshake (PRODUCT §4 connect, §10): bad tokens are refused with 401 JSON before
// any session exists; good ones get jetsocket:connection_established.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TEST_JWT_SECRET } from './helpers/server.mjs';
import { signJwt, claims, mint, nowSeconds } from './helpers/jwt.mjs';
import {
  connect, expectRefused, ping, request, wsHandshake, socketPath, refusalStatus, Clients,
  CLIENT_LABEL, CLIENT_MAJOR, TOKEN_IN,
} from './helpers/clients.mjs';
import { assertJsonError, assertNoLeak } from './helpers/assert.mjs';

const SOCKET_ID = /^\d+\.\d+$/;

/** tampered keeps the signature of a valid token but swaps in another payload. */
function tampered() {
  const [h, , s] = mint({ sub: '1' }).split('.');
  const p = Buffer.from(JSON.stringify(claims({ sub: '2', role: 'admin' }))).toString('base64url');
  return `${h}.${p}.${s}`;
}

/** The bad tokens every handshake path must refuse; undefined means no token parameter. */
function badTokens() {
  const now = nowSeconds();
  return [
    ['missing', undefined],
    ['empty', ''],
    ['malformed (not a JWT)', 'not-a-jwt-malformed-e2e'],
    ['malformed (three junk segments)', 'aaaa.bbbb.cccc'],
    ['expired beyond the leeway', mint({ iat: now - 7200, exp: now - 3600 })],
    ['not yet valid (nbf in an hour)', mint({ nbf: now + 3600 })],
    ['signed with another secret', mint({}, { secret: 'another-secret-0123456789abcdef-0123456789' })],
    ['alg none', mint({}, { alg: 'none' })],
    ['alg HS512', mint({}, { alg: 'HS512' })],
    ['alg HS384', mint({}, { alg: 'HS384' })],
    ['alg RS256 header with an HMAC signature', mint({}, { alg: 'RS256' })],
    ['tampered payload', tampered()],
    ['no exp', mint({ exp: undefined })],
    ['no sub (no identity)', mint({ sub: undefined })],
    ['oversized (> 8 KB) but correctly signed', mint({ padding: 'x'.repeat(9 * 1024) })],
  ];
}

/**
 * assertConnectError checks what a 4.x client with `auth: {token}` is told (PRODUCT §4): a
 * CONNECT_ERROR `invalid_token` with data {status: 401, reason}. Query tokens are refused by
 * HTTP, where the client shows only the status.
 */
function assertConnectError(err) {
  if (CLIENT_MAJOR !== 4 || TOKEN_IN !== 'auth') return;
  assert.equal(err.message, 'invalid_token', `connect_error message (${JSON.stringify(err.data)})`);
  assert.equal(err.data?.status, 401);
  assert.equal(typeof err.data?.reason, 'string');
  assert.ok(err.data.reason.length > 0, 'a reason is given');
}

describe('bad tokens are refused before a session exists', () => {
  let srv;
  const clients = new Clients();
  const cases = badTokens();
  before(async () => { srv = await startServer(); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  for (const [what, token] of cases) {
    test(`${what}: polling handshake -> 401 invalid_token`, async () => {
      const res = await request(socketPath(srv.url, { token }));
      assertJsonError(res, 401, 'invalid_token', what);
      assert.ok(!/"sid"/.test(res.text), 'no engine.io session in the answer');
    });

    test(`${what}: websocket handshake -> 401 invalid_token`, async () => {
      const res = await wsHandshake(socketPath(srv.url, { transport: 'websocket', token }));
      if (res.ws) { res.ws.terminate(); assert.fail('websocket upgrade was accepted'); }
      assertJsonError(res, 401, 'invalid_token', what);
    });

    test(`${what}: ${CLIENT_LABEL} gets connect_error 401 (polling, token in ${TOKEN_IN})`, async () => {
      const err = await expectRefused(srv.url, token, { transports: ['polling'] });
      assert.equal(refusalStatus(err), 401, `connect_error ${err.message}`);
      assertConnectError(err);
    });

    if (CLIENT_MAJOR === 4 && TOKEN_IN === 'auth') {
      // The other way a 4.x client may pass it: refused by HTTP before any session.
      test(`${what}: ${CLIENT_LABEL} gets connect_error 401 (polling, token in query)`, async () => {
        const err = await expectRefused(srv.url, token, { transports: ['polling'], tokenIn: 'query' });
        assert.equal(refusalStatus(err), 401, `connect_error ${err.message}`);
      });
    }
  }

  test('an unknown sid without a token opens no session (polling and websocket)', async () => {
    const poll = await request(socketPath(srv.url, { extra: { sid: 'forged-sid-e2e' } }));
    assert.ok(poll.status >= 400 && poll.status < 500, `polling, forged sid -> ${poll.status} ${poll.text}`);
    assert.ok(!/"sid"/.test(poll.text), 'no engine.io open packet');
    const ws = await wsHandshake(socketPath(srv.url, { transport: 'websocket', extra: { sid: 'forged-sid-e2e' } }));
    if (ws.ws) { ws.ws.terminate(); assert.fail('websocket with a forged sid and no token was upgraded'); }
    assert.ok(ws.status >= 400 && ws.status < 500, `websocket, forged sid -> ${ws.status} ${ws.text}`);
  });

  test('an empty sid parameter does not skip the token check', async () => {
    const res = await request(socketPath(srv.url, { extra: { sid: '' } }));
    assertJsonError(res, 401, 'invalid_token', 'sid= and no token');
  });

  test('socket.io-client with default transports is refused too', async () => {
    const err = await expectRefused(srv.url, mint({}, { alg: 'none' }));
    assert.equal(refusalStatus(err), 401);
    assertConnectError(err);
  });

  test('socket.io-client with transports [websocket] is refused too', async () => {
    const err = await expectRefused(srv.url, mint({ exp: nowSeconds() - 3600 }), { transports: ['websocket'] });
    assert.equal(refusalStatus(err), 401, `connect_error ${err.message}`);
    assertConnectError(err);
  });

  test('the server keeps serving: a good token still connects and pings', async () => {
    const { socket, info } = await connect(srv.url, mint(), { clients, transports: ['websocket'] });
    assert.equal(info.user_id, '1');
    const ack = await ping(socket);
    assert.equal(ack.pong, true);
  });

  test('no refused (or accepted) token appears in the server output', () => {
    assertNoLeak(srv.output(), cases.map(([, t]) => t).filter((t) => t && t.length > 8), 'token');
  });
});

describe('accepted connections', () => {
  let srv;
  const clients = new Clients();
  const accepted = [];
  const tok = (over) => { const t = mint(over); accepted.push(t); return t; };
  before(async () => { srv = await startServer({ LOG_LEVEL: 'debug' }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  for (const transports of [undefined, ['websocket'], ['polling']]) {
    const label = transports ? transports.join(',') : 'default transports';
    test(`${label}: connection_established {socket_id, user_id} and ping ack`, async () => {
      const token = tok({ sub: '7', name: 'Seven' });
      const opts = transports ? { transports, clients } : { clients };
      const { socket, info } = await connect(srv.url, token, opts);
      assert.match(info.socket_id, SOCKET_ID);
      assert.equal(info.user_id, '7');
      const ack = await ping(socket);
      assert.equal(ack.pong, true);
      assert.equal(typeof ack.time_ms, 'number');
      assert.ok(Number.isFinite(ack.time_ms));
    });
  }

  test('a token expired within the default 30 s leeway is accepted', async () => {
    const now = nowSeconds();
    const { info } = await connect(srv.url, tok({ sub: '8', iat: now - 600, exp: now - 10 }), { clients });
    assert.equal(info.user_id, '8');
  });

  test('a token with nbf a few seconds ahead (within the leeway) is accepted', async () => {
    const { info } = await connect(srv.url, tok({ sub: '9', nbf: nowSeconds() + 10 }), { clients });
    assert.equal(info.user_id, '9');
  });

  test('a large but legitimate token (about 6 KB of claims) is accepted', async () => {
    const groups = Array.from({ length: 420 }, (_, i) => `group-${i}`);
    const token = tok({ sub: 'big', groups });
    assert.ok(token.length > 5000 && token.length < 8 * 1024, `token is ${token.length} bytes`);
    const { info } = await connect(srv.url, token, { clients });
    assert.equal(info.user_id, 'big');
  });

  test('socket_id is unique per connection', async () => {
    const conns = await Promise.all(
      Array.from({ length: 10 }, (_, i) => connect(srv.url, tok({ sub: `u${i}` }), { clients })),
    );
    const ids = conns.map((c) => c.info.socket_id);
    for (const id of ids) assert.match(id, SOCKET_ID);
    assert.equal(new Set(ids).size, ids.length, `duplicate socket_id in ${ids}`);
    conns.forEach((c, i) => assert.equal(c.info.user_id, `u${i}`));
  });

  test('accepted tokens and the secret do not appear in the output (debug level)', () => {
    assert.ok(accepted.length >= 5);
    assertNoLeak(srv.output(), accepted, 'token');
    assertNoLeak(srv.output(), [TEST_JWT_SECRET], 'JWT secret');
  });
});

describe('socket_id is unique across restarts', () => {
  test('ids from two server runs do not collide', async () => {
    const ids = [];
    for (let run = 0; run < 2; run++) {
      const srv = await startServer();
      const clients = new Clients();
      try {
        for (let i = 0; i < 5; i++) ids.push((await connect(srv.url, mint(), { clients, transports: ['websocket'] })).info.socket_id);
      } finally {
        clients.closeAll();
        await srv.stop();
      }
    }
    assert.equal(new Set(ids).size, ids.length, `duplicate socket_id across restarts: ${ids}`);
  });
});

describe('issuer and audience, when configured, are enforced', () => {
  let srv;
  const clients = new Clients();
  const ISS = 'https://issuer.example';
  const AUD = 'jetsocket-e2e';
  before(async () => { srv = await startServer({ JWT_ISSUER: ISS, JWT_AUDIENCE: AUD }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  const refused = [
    ['no iss/aud', {}],
    ['wrong iss', { iss: 'https://evil.example', aud: AUD }],
    ['wrong aud', { iss: ISS, aud: 'someone-else' }],
    ['missing aud', { iss: ISS }],
    ['missing iss', { aud: AUD }],
  ];
  for (const [what, extra] of refused) {
    test(`${what} -> 401 invalid_token`, async () => {
      const res = await request(socketPath(srv.url, { token: mint(extra) }));
      assertJsonError(res, 401, 'invalid_token', what);
    });
  }

  test('the right iss and aud are accepted (aud as string or array)', async () => {
    const a = await connect(srv.url, mint({ iss: ISS, aud: AUD }), { clients });
    assert.equal(a.info.user_id, '1');
    const b = await connect(srv.url, signJwt(claims({ sub: '2', iss: ISS, aud: [AUD, 'other'] })), { clients });
    assert.equal(b.info.user_id, '2');
  });
});
