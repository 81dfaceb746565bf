// POST /login and GET /healthz against the real binary (PRODUCT §3).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, TEST_JWT_SECRET } from './helpers/server.mjs';
import { decodeJwt, verifiesWith, nowSeconds } from './helpers/jwt.mjs';
import { connect, ping, request, Clients } from './helpers/clients.mjs';
import { assertJsonError, assertNoLeak } from './helpers/assert.mjs';
import { DEMO_USERS, FILE_USER, FILE_USER_PASSWORD, writeUsersFile } from './helpers/fixtures.mjs';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** postLogin sends a raw body with a content type and returns request()'s result. */
const postLogin = (url, contentType, body, extra = {}) =>
  request(`${url}/login`, { method: 'POST', headers: { 'content-type': contentType }, body, ...extra });

describe('healthz and login (demo users)', () => {
  let srv;
  const clients = new Clients();
  const issued = [];
  before(async () => { srv = await startServer(); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('GET /healthz answers 200 {"status":"ok"}', async () => {
    const res = await request(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /application\/json/);
    assert.deepEqual(res.json, { status: 'ok' });
  });

  for (const [username, u] of Object.entries(DEMO_USERS)) {
    test(`JSON login as ${username} returns a Bearer token with the user's claims`, async () => {
      const before = nowSeconds();
      const res = await login(srv.url, username, u.password);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const { token, token_type, expires_at, user } = res.body;
      issued.push(token);
      assert.equal(token_type, 'Bearer');
      assert.equal(typeof token, 'string');
      assert.deepEqual(user, { id: u.id, name: u.name });
      assert.match(expires_at, RFC3339);

      const { header, payload } = decodeJwt(token);
      assert.equal(header.alg, 'HS256');
      assert.ok(verifiesWith(token, TEST_JWT_SECRET), 'token is signed with JWT_SECRET');
      assert.equal(payload.sub, u.id);
      assert.equal(payload.name, u.name);
      assert.equal(payload.role, u.role);
      assert.deepEqual([...payload.groups].sort(), [...u.groups].sort());
      for (const p of u.permissions ?? []) assert.ok(payload.permissions.includes(p), `permission ${p}`);
      assert.equal(typeof payload.iat, 'number');
      assert.equal(typeof payload.exp, 'number');
      assert.ok(payload.iat >= before - 5 && payload.iat <= nowSeconds() + 5, `iat ${payload.iat} is now`);
      // Default JWT_TTL is 1h.
      assert.ok(Math.abs(payload.exp - payload.iat - 3600) <= 1, `exp - iat = ${payload.exp - payload.iat}`);
      assert.ok(Math.abs(Date.parse(expires_at) / 1000 - payload.exp) <= 1, `expires_at ${expires_at} matches exp ${payload.exp}`);
      assert.equal(payload.iss, undefined, 'no iss without JWT_ISSUER');
      assert.equal(payload.aud, undefined, 'no aud without JWT_AUDIENCE');
    });
  }

  test('form login (application/x-www-form-urlencoded) works too', async () => {
    const res = await postLogin(srv.url, 'application/x-www-form-urlencoded',
      new URLSearchParams({ username: 'bob', password: 'bob123' }).toString());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.token_type, 'Bearer');
    assert.deepEqual(res.json.user, { id: '2', name: 'Bob Builder' });
    issued.push(res.json.token);
    assert.equal(decodeJwt(res.json.token).payload.sub, '2');
  });

  test('a login token opens a socket as that user', async () => {
    const res = await login(srv.url, 'carol', 'carol123');
    assert.equal(res.status, 200);
    issued.push(res.body.token);
    const { socket, info } = await connect(srv.url, res.body.token, { clients, transports: ['websocket'] });
    assert.equal(info.user_id, '3');
    assert.equal((await ping(socket)).pong, true);
  });

  test('wrong password and unknown user get the same 401 invalid_credentials', async () => {
    const wrong = await login(srv.url, 'alice', 'not-alices-password-Q7');
    const unknown = await login(srv.url, 'mallory-nobody', 'whatever-pass-Q7');
    for (const [what, res] of [['wrong password', wrong], ['unknown user', unknown]]) {
      assert.equal(res.status, 401, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body?.error, 'invalid_credentials', what);
      assert.equal(typeof res.body.message, 'string', what);
      assert.equal(res.body.token, undefined, what);
    }
    assert.deepEqual(wrong.body, unknown.body, 'the answer does not tell which part was wrong');
  });

  test('a username with the right password of another user is refused', async () => {
    const res = await login(srv.url, 'bob', 'alice123');
    assert.equal(res.status, 401);
    assert.equal(res.body?.error, 'invalid_credentials');
  });

  const badRequests = [
    ['malformed JSON', 'application/json', '{"username": "alice", "password": '],
    ['JSON missing password', 'application/json', '{"username":"alice"}'],
    ['JSON missing username', 'application/json', '{"password":"alice123"}'],
    ['empty JSON object', 'application/json', '{}'],
    ['empty body', 'application/json', ''],
    ['JSON array', 'application/json', '["alice","alice123"]'],
    ['form missing password', 'application/x-www-form-urlencoded', 'username=alice'],
  ];
  for (const [what, ct, body] of badRequests) {
    test(`${what} -> 400 invalid_request`, async () => {
      const res = await postLogin(srv.url, ct, body);
      assertJsonError(res, 400, 'invalid_request', what);
    });
  }

  test('a 2 MB login body is refused with a JSON 4xx', async () => {
    const body = JSON.stringify({ username: 'alice', password: 'x'.repeat(2 * 1024 * 1024) });
    const res = await postLogin(srv.url, 'application/json', body);
    assert.ok([400, 413].includes(res.status), `2 MB login -> ${res.status} ${res.text.slice(0, 200)}`);
    assert.equal(typeof res.json?.error, 'string', res.text.slice(0, 200));
  });

  test('a login with another content type is refused with a JSON 4xx', async () => {
    const res = await postLogin(srv.url, 'text/plain', 'username=alice&password=alice123');
    assert.ok([400, 415].includes(res.status), `text/plain login -> ${res.status} ${res.text}`);
    assert.equal(typeof res.json?.error, 'string', res.text);
    assert.equal(res.json.token, undefined);
  });

  test('the server still serves after all of the above', async () => {
    const res = await request(`${srv.url}/healthz`);
    assert.equal(res.status, 200);
  });

  test('no password and no issued token appears in the server output', () => {
    const out = srv.output();
    assertNoLeak(out, ['alice123', 'bob123', 'carol123', 'not-alices-password-Q7', 'whatever-pass-Q7'], 'password');
    assert.ok(issued.length >= 4);
    assertNoLeak(out, issued, 'token');
  });
});

describe('login rate limit', () => {
  let srv;
  before(async () => { srv = await startServer({ LOGIN_RATE_LIMIT: '3/1m' }); });
  after(async () => { await srv?.stop(); });

  test('LOGIN_RATE_LIMIT=3/1m: the 4th attempt from one IP gets 429 with Retry-After', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await login(srv.url, 'alice', `wrong-${i}`);
      assert.equal(res.status, 401, `attempt ${i + 1} is under the limit`);
    }
    // Even the right password is refused once over the limit.
    const res = await postLogin(srv.url, 'application/json', JSON.stringify({ username: 'alice', password: 'alice123' }));
    assertJsonError(res, 429, 'rate_limited', '4th login');
    const retry = res.headers['retry-after'];
    assert.match(String(retry), /^\d+$/, `Retry-After is whole seconds: ${retry}`);
    assert.ok(Number(retry) >= 1 && Number(retry) <= 60, `Retry-After ${retry} within the 1m window`);
  });

  test('a spoofed X-Forwarded-For does not reset the limit', async () => {
    const res = await postLogin(srv.url, 'application/json',
      JSON.stringify({ username: 'alice', password: 'alice123' }),
      { headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9' } });
    assertJsonError(res, 429, 'rate_limited', 'login with forged X-Forwarded-For');
  });

  test('the limit is per client IP: another address still logs in', async () => {
    // Linux routes all of 127.0.0.0/8 to loopback, so 127.0.0.2 is a second client.
    const res = await postLogin(srv.url, 'application/json',
      JSON.stringify({ username: 'alice', password: 'alice123' }), { localAddress: '127.0.0.2' });
    assert.equal(res.status, 200, res.text);
    assert.equal(typeof res.json.token, 'string');
  });

  test('healthz is not rate limited', async () => {
    assert.equal((await request(`${srv.url}/healthz`)).status, 200);
  });
});

describe('login rate limit with a bare count (per 15 minutes)', () => {
  let srv;
  before(async () => { srv = await startServer({ LOGIN_RATE_LIMIT: '2' }); });
  after(async () => { await srv?.stop(); });

  test('LOGIN_RATE_LIMIT=2: the 3rd attempt gets 429, Retry-After within 15 minutes', async () => {
    assert.equal((await login(srv.url, 'bob', 'bob123')).status, 200);
    assert.equal((await login(srv.url, 'bob', 'bob123')).status, 200);
    const res = await postLogin(srv.url, 'application/json', JSON.stringify({ username: 'bob', password: 'bob123' }));
    assertJsonError(res, 429, 'rate_limited', '3rd login');
    const retry = Number(res.headers['retry-after']);
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 900, `Retry-After ${res.headers['retry-after']}`);
  });
});

describe('USERS_FILE', () => {
  let srv;
  before(async () => { srv = await startServer({ USERS_FILE: writeUsersFile() }); });
  after(async () => { await srv?.stop(); });

  test('a file user logs in with its bcrypt password and gets all its claims', async () => {
    const res = await login(srv.url, FILE_USER.username, FILE_USER_PASSWORD);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.user, { id: FILE_USER.id, name: FILE_USER.name });
    const { payload } = decodeJwt(res.body.token);
    assert.equal(payload.sub, FILE_USER.id);
    assert.equal(payload.name, FILE_USER.name);
    assert.equal(payload.email, FILE_USER.email);
    assert.equal(payload.role, FILE_USER.role);
    assert.deepEqual([...payload.groups].sort(), [...FILE_USER.groups].sort());
    assert.deepEqual(payload.permissions, FILE_USER.permissions);
  });

  test('a wrong password for a file user is refused', async () => {
    const res = await login(srv.url, FILE_USER.username, 's3cret-pass-not');
    assert.equal(res.status, 401);
    assert.equal(res.body?.error, 'invalid_credentials');
  });

  test('the demo users do not exist when USERS_FILE is set', async () => {
    const res = await login(srv.url, 'alice', 'alice123');
    assert.equal(res.status, 401);
    assert.equal(res.body?.error, 'invalid_credentials');
  });

  test('the bcrypt hash and password never reach the output', () => {
    assertNoLeak(srv.output(), [FILE_USER_PASSWORD, FILE_USER.password_bcrypt], 'credential');
  });
});
