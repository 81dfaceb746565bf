// Tokens from an identity provider (PRODUCT §12): a local JWKS server with RSA, EC and
// Ed25519 keys made by node:crypto, tokens signed here; every refusal of §4 repeated for
// asymmetric tokens on both handshake transports and on jetsocket:refresh; algorithm
// confusion; claim mapping; key rotation with connections open; the unknown-kid bound;
// the provider's outages.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  createPublicKey, generateKeyPairSync, sign as cryptoSign, constants, createHmac,
} from 'node:crypto';
import {
  startServer, runServerExpectingExit, freePort, login, TEST_JWT_SECRET,
} from './helpers/server.mjs';
import { nowSeconds, mint } from './helpers/jwt.mjs';
import {
  connect, expectRefused, ping, request, wsHandshake, socketPath, refusalStatus, Clients,
} from './helpers/clients.mjs';
import { assertJsonError, assertNoLeak } from './helpers/assert.mjs';
import {
  subscribeOk, subscribeFails, emitAck, record, waitForMatch, clientEvent,
} from './helpers/channels.mjs';
import { sleep } from './helpers/clients.mjs';

const ISSUER = 'https://idp.e2e.test/';
const AUDIENCE = 'jetsocket-e2e';
const ROLES_CLAIM = 'https://jetsocket.test/roles'; // Auth0-style namespaced claim

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

// Keys of every accepted type; `alg` is what the JWK announces (RSA's announces none).
function makeKeys() {
  const pair = (type, opts) => generateKeyPairSync(type, opts);
  return {
    rsa: { kid: 'rsa-1', ...pair('rsa', { modulusLength: 2048 }) },
    rsa2: { kid: 'rsa-2', alg: 'RS256', ...pair('rsa', { modulusLength: 2048 }) },
    p256: { kid: 'ec-256', alg: 'ES256', ...pair('ec', { namedCurve: 'P-256' }) },
    p384: { kid: 'ec-384', alg: 'ES384', ...pair('ec', { namedCurve: 'P-384' }) },
    ed: { kid: 'ed-1', alg: 'EdDSA', ...pair('ed25519') },
  };
}

function jwkOf(k) {
  const jwk = k.publicKey.export({ format: 'jwk' });
  return { ...jwk, kid: k.kid, use: 'sig', ...(k.alg ? { alg: k.alg } : {}) };
}

// signWith signs payload as `alg` with the private key of `k`, kid in the header.
function signWith(alg, k, payload, header = { kid: k.kid }) {
  const input = `${b64url({ alg, typ: 'JWT', ...header })}.${b64url(payload)}`;
  const data = Buffer.from(input);
  const hash = { RS256: 'sha256', RS384: 'sha384', RS512: 'sha512', PS256: 'sha256', ES256: 'sha256', ES384: 'sha384' }[alg];
  let sig;
  if (alg === 'EdDSA') sig = cryptoSign(null, data, k.privateKey);
  else if (alg.startsWith('PS')) {
    sig = cryptoSign(hash, data, {
      key: k.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    });
  } else if (alg.startsWith('ES')) sig = cryptoSign(hash, data, { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  else sig = cryptoSign(hash, data, k.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

const hs256 = (secret, payload, header) => {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT', ...header })}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
};

function idpClaims(overrides = {}) {
  const now = nowSeconds();
  const c = {
    sub: 'kim', name: 'Kim Provider', iss: ISSUER, aud: [AUDIENCE, 'https://idp.e2e.test/userinfo'],
    iat: now, exp: now + 3600, [ROLES_CLAIM]: ['viewer', 'admin'], scope: 'openid profile',
    ...overrides,
  };
  for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k];
  return c;
}

// A JWKS endpoint whose keys can be swapped and which can be made to fail.
async function startJwks(keys) {
  const state = { keys, fail: false, hits: 0 };
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    state.hits += 1;
    if (state.fail) { res.writeHead(503); res.end('down'); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys.map(jwkOf) }));
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${port}/.well-known/jwks.json`;
  state.close = () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); });
  return state;
}

function serverEnv(jwks, extra = {}) {
  return {
    JWKS_URL: jwks.url, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE,
    CLAIM_ROLES: ROLES_CLAIM, CLAIM_PERMISSIONS: 'scope',
    CHANNEL_ROLES: 'private-admin-*=admin', ...extra,
  };
}

async function status(url) {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

/** readyWithin polls /readyz until it answers 200, or fails after `ms`. */
async function readyWithin(srv, ms, what) {
  const deadline = Date.now() + ms;
  while ((await status(`${srv.url}/readyz`)) !== 200) {
    if (Date.now() > deadline) assert.fail(`${what}: /readyz not 200 after ${ms} ms`);
    await sleep(50);
  }
}

const keys = makeKeys();

describe('tokens signed with the provider\'s keys', () => {
  let jwks;
  let srv;
  const clients = new Clients();
  const issued = [];
  before(async () => {
    jwks = await startJwks([keys.rsa, keys.rsa2, keys.p256, keys.p384, keys.ed]);
    srv = await startServer(serverEnv(jwks, { JWKS_UNKNOWN_KID_INTERVAL: '1h' }));
    await readyWithin(srv, 10_000, 'provider up');
  });
  after(async () => {
    clients.closeAll();
    await srv?.stop();
    assertNoLeak(srv?.output() ?? '', issued, 'token');
    await jwks?.close();
  });
  const tok = (t) => { issued.push(t); return t; };

  for (const [alg, k] of [['RS256', 'rsa'], ['RS384', 'rsa'], ['RS512', 'rsa'], ['PS256', 'rsa'],
    ['RS256', 'rsa2'], ['ES256', 'p256'], ['ES384', 'p384'], ['EdDSA', 'ed']]) {
    test(`${alg} with the ${k} key is accepted (default transports)`, async () => {
      const { socket, info } = await connect(srv.url, tok(signWith(alg, keys[k], idpClaims())), { clients });
      assert.equal(info.user_id, 'kim');
      socket.close();
    });
  }

  test('a token without kid is tried with the keys of its algorithm', async () => {
    const { socket } = await connect(srv.url, tok(signWith('ES256', keys.p256, idpClaims(), {})), { clients, transports: ['websocket'] });
    socket.close();
  });

  test('our own /login tokens keep working beside them', async () => {
    const res = await login(srv.url, 'bob', 'bob123');
    assert.equal(res.status, 200);
    const { socket, info } = await connect(srv.url, tok(res.body.token), { clients, transports: ['websocket'] });
    assert.equal(info.user_id, '2');
    socket.close();
  });

  const rsaPem = keys.rsa.publicKey.export({ type: 'spki', format: 'pem' });
  const [h, p, s] = signWith('RS256', keys.rsa, idpClaims()).split('.');
  const now = nowSeconds();
  const refusals = [
    ['alg none naming a JWKS kid', `${b64url({ alg: 'none', kid: 'rsa-1' })}.${p}.`],
    ['alg HS512 naming a JWKS kid', `${b64url({ alg: 'HS512', kid: 'rsa-1' })}.${p}.${s}`],
    ['ES512 (not an accepted algorithm)', `${b64url({ alg: 'ES512', kid: 'ec-256' })}.${p}.${s}`],
    ['HS256 keyed with the RSA public key (algorithm confusion)', hs256(rsaPem, idpClaims(), { kid: 'rsa-1' })],
    ['HS256 keyed with the RSA public key, no kid', hs256(rsaPem, idpClaims())],
    ['HS256 with our own secret but a JWKS kid', hs256(TEST_JWT_SECRET, idpClaims(), { kid: 'rsa-1' })],
    ['RS256 naming the EC key', signWith('RS256', keys.rsa, idpClaims(), { kid: 'ec-256' })],
    ['ES256 naming the RSA key', signWith('ES256', keys.p256, idpClaims(), { kid: 'rsa-1' })],
    ['EdDSA naming the P-384 key', signWith('EdDSA', keys.ed, idpClaims(), { kid: 'ec-384' })],
    ['PS256 where the JWK says RS256', signWith('PS256', keys.rsa2, idpClaims())],
    ['signed by another key under a known kid', signWith('RS256', keys.rsa2, idpClaims(), { kid: 'rsa-1' })],
    ['tampered payload', `${h}.${b64url(idpClaims({ sub: 'someone-else' }))}.${s}`],
    ['unknown kid', signWith('RS256', keys.rsa, idpClaims(), { kid: 'not-published' })],
    ['expired', signWith('ES384', keys.p384, idpClaims({ iat: now - 7200, exp: now - 3600 }))],
    ['not yet valid', signWith('EdDSA', keys.ed, idpClaims({ nbf: now + 3600 }))],
    ['no exp', signWith('RS256', keys.rsa, idpClaims({ exp: undefined }))],
    ['no sub', signWith('RS256', keys.rsa, idpClaims({ sub: undefined }))],
    ['wrong issuer', signWith('ES256', keys.p256, idpClaims({ iss: 'https://evil.e2e.test/' }))],
    ['wrong audience', signWith('ES256', keys.p256, idpClaims({ aud: 'another-api' }))],
    ['roles claim of the wrong type', signWith('RS256', keys.rsa, idpClaims({ [ROLES_CLAIM]: { admin: true } }))],
    ['oversized (> 8 KB) but correctly signed', signWith('RS256', keys.rsa, idpClaims({ padding: 'x'.repeat(9 * 1024) }))],
  ];
  for (const [what, token] of refusals) {
    test(`${what}: refused on the polling and websocket handshakes`, async () => {
      tok(token);
      const poll = await request(socketPath(srv.url, { token }));
      assertJsonError(poll, 401, 'invalid_token', what);
      const ws = await wsHandshake(socketPath(srv.url, { transport: 'websocket', token }));
      if (ws.ws) { ws.ws.terminate(); assert.fail('websocket upgrade was accepted'); }
      assertJsonError(ws, 401, 'invalid_token', what);
    });
  }

  test('the same refusals on jetsocket:refresh; the connection keeps its claims', async () => {
    const { socket } = await connect(srv.url, tok(signWith('ES256', keys.p256, idpClaims())), { clients, transports: ['websocket'] });
    for (const [what, token] of refusals) {
      const ack = await emitAck(socket, 'jetsocket:refresh', { token });
      assert.equal(ack?.ok, false, `${what}: ${JSON.stringify(ack)}`);
      assert.equal(ack.code, 'invalid_token', `${what}: ${JSON.stringify(ack)}`);
    }
    const ok = await emitAck(socket, 'jetsocket:refresh', { token: tok(signWith('EdDSA', keys.ed, idpClaims())) });
    assert.equal(ok?.ok, true, JSON.stringify(ok));
    assert.equal((await ping(socket))?.pong, true);
    socket.close();
  });

  test('the refusals cost the provider no more than one fetch', () => {
    // Unknown kids above could refresh once (JWKS_UNKNOWN_KID_INTERVAL=1h); 1 start-up fetch.
    assert.ok(jwks.hits <= 2, `JWKS fetched ${jwks.hits} times`);
  });

  test('mapped claims drive rules, presence user_info and client events', async () => {
    const a = await connect(srv.url, tok(signWith('RS256', keys.rsa, idpClaims())), { clients, transports: ['websocket'] });
    const viewer = idpClaims({ sub: 'vic', name: 'Vic Viewer', [ROLES_CLAIM]: 'viewer' });
    const b = await connect(srv.url, tok(signWith('ES256', keys.p256, viewer)), { clients, transports: ['websocket'] });
    await subscribeOk(a.socket, 'private-admin-room');
    await subscribeFails(b.socket, 'private-admin-room', 403);
    const ackA = await subscribeOk(a.socket, 'presence-idp');
    assert.deepEqual(ackA.presence.hash.kim, { name: 'Kim Provider' });
    const added = record(a.socket, 'jetsocket:member_added');
    const ackB = await subscribeOk(b.socket, 'presence-idp');
    assert.deepEqual(ackB.presence.hash.kim, { name: 'Kim Provider' });
    await waitForMatch(added, (m) => m.user_id === 'vic' && m.user_info?.name === 'Vic Viewer', 5000, 'member_added vic');
    const got = record(b.socket, 'client-hello');
    const ack = await clientEvent(a.socket, 'client-hello', 'presence-idp', { hi: 1 });
    assert.notEqual(ack?.ok, false, JSON.stringify(ack));
    await waitForMatch(got, (e) => e.user_id === 'kim' && e.data?.hi === 1, 5000, 'client event from kim');
    a.socket.close();
    b.socket.close();
  });
});

describe('key rotation at the provider with connections open', () => {
  let jwks;
  let srv;
  const clients = new Clients();
  before(async () => {
    jwks = await startJwks([keys.rsa]);
    srv = await startServer(serverEnv(jwks, { JWKS_UNKNOWN_KID_INTERVAL: '1s' }));
  });
  after(async () => { clients.closeAll(); await srv?.stop(); await jwks?.close(); });

  test('a new kid is fetched at its first token; the old kid is refused once withdrawn; open connections stay', async () => {
    const old = await connect(srv.url, signWith('RS256', keys.rsa, idpClaims()), { clients, transports: ['websocket'] });
    jwks.keys = [keys.ed]; // the provider rotates: a new key, the old one withdrawn
    const fresh = await connect(srv.url, signWith('EdDSA', keys.ed, idpClaims()), { clients, transports: ['websocket'] });
    assert.equal(fresh.info.user_id, 'kim');
    assert.equal((await ping(old.socket))?.pong, true, 'the connection made with the old key is still open');
    const err = await expectRefused(srv.url, signWith('RS256', keys.rsa, idpClaims()), { transports: ['polling'] });
    assert.equal(refusalStatus(err), 401);
    // The old connection moves to a token of the new key.
    const ack = await emitAck(old.socket, 'jetsocket:refresh', { token: signWith('EdDSA', keys.ed, idpClaims()) });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    old.socket.close();
    fresh.socket.close();
  });
});

describe('a flood of unknown kids', () => {
  let jwks;
  let srv;
  before(async () => {
    jwks = await startJwks([keys.rsa]);
    srv = await startServer(serverEnv(jwks, { JWKS_UNKNOWN_KID_INTERVAL: '1h' }));
    await readyWithin(srv, 10_000, 'provider up');
  });
  after(async () => { await srv?.stop(); await jwks?.close(); });

  test('100 handshakes with random kids: all refused, the provider asked at most once', async () => {
    const start = jwks.hits;
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) =>
      request(socketPath(srv.url, { token: signWith('RS256', keys.rsa, idpClaims(), { kid: `random-${i}-${Math.random()}` }) }))));
    for (const r of results) assertJsonError(r, 401, 'invalid_token', 'random kid');
    assert.ok(jwks.hits - start <= 1, `${jwks.hits - start} fetches for 100 unknown kids`);
    const { socket } = await connect(srv.url, signWith('RS256', keys.rsa, idpClaims()), { transports: ['websocket'] });
    socket.close();
  });
});

describe('provider outages', () => {
  let jwks;
  let srv;
  before(async () => {
    jwks = await startJwks([keys.p256]);
    jwks.fail = true;
    srv = await startServer(serverEnv(jwks));
  });
  after(async () => { await srv?.stop(); await jwks?.close(); });

  test('unreachable at start: the server starts, /readyz is 503 until the keys load', async () => {
    assert.equal(await status(`${srv.url}/healthz`), 200);
    assert.equal(await status(`${srv.url}/readyz`), 503);
    // Our own tokens are served meanwhile.
    const { socket } = await connect(srv.url, mint({ iss: ISSUER, aud: AUDIENCE }), { transports: ['websocket'] });
    socket.close();
    jwks.fail = false;
    await readyWithin(srv, 15_000, 'the provider is back');
  });

  test('unreachable later: cached keys keep working, failures are counted', async () => {
    jwks.fail = true;
    // Force a fetch: an unknown kid (the first one is allowed at once).
    await request(socketPath(srv.url, { token: signWith('ES256', keys.p256, idpClaims(), { kid: 'not-yet' }) }));
    const { socket } = await connect(srv.url, signWith('ES256', keys.p256, idpClaims()), { transports: ['websocket'] });
    socket.close();
    assert.equal(await status(`${srv.url}/readyz`), 200);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    const failed = Number(/^jetsocket_jwks_refreshes_total\{outcome="error"\} (\d+)/m.exec(metrics)?.[1]);
    assert.ok(failed >= 2, `refresh failures counted: ${failed}`);
    assert.match(metrics, /^jetsocket_jwks_keys 1$/m);
    assert.match(srv.output(), /JWKS refresh failed/);
  });
});

describe('start-up validation', () => {
  test('JWKS_URL without JWT_ISSUER stops the server with one line', async () => {
    const { code, output } = await runServerExpectingExit({ JWKS_URL: 'http://127.0.0.1:9/jwks' });
    assert.notEqual(code, 0);
    assert.match(output, /JWT_ISSUER/);
  });
});
