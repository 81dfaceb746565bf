// Start-up configuration (PRODUCT §2): every bad value stops the process with one clear line
// naming the variable; good values take effect.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer, runServerExpectingExit, login, TEST_JWT_SECRET } from './helpers/server.mjs';
import { decodeJwt, mint, nowSeconds } from './helpers/jwt.mjs';
import {
  connect, expectRefused, ping, request, refusalStatus, Clients,
} from './helpers/clients.mjs';
import { assertNoLeak } from './helpers/assert.mjs';
import { productionEnv, writeTemp, writeUsersFile } from './helpers/fixtures.mjs';

/** assertRefused checks a start-up refusal: non-zero exit and a `config:` line naming `name`. */
function assertRefused({ code, signal, output }, name, leaked = []) {
  assert.equal(signal, null, `exited by itself, not killed (output: ${output})`);
  assert.notEqual(code, 0, `non-zero exit; output:\n${output}`);
  const lines = output.split('\n').filter((l) => l.includes('config:') && l.includes(name));
  assert.ok(lines.length >= 1, `a line with "config:" and "${name}"; output:\n${output}`);
  assert.ok(!/panic|goroutine \d+/.test(output), `clean exit, no panic:\n${output}`);
  assertNoLeak(output, leaked, 'configured secret');
}

describe('configuration is validated at start-up', () => {
  const shortSecret = 'short-secret-XYZ-31-bytes-long!'; // 31 bytes
  const refusals = [
    ['JWT_SECRET shorter than 32 bytes', { JWT_SECRET: shortSecret }, 'JWT_SECRET', [shortSecret]],
    ['APP_ENV=production without JWT_SECRET', { ...productionEnv(), JWT_SECRET: undefined }, 'JWT_SECRET'],
    ['APP_ENV=production with a short JWT_SECRET', { ...productionEnv(), JWT_SECRET: shortSecret }, 'JWT_SECRET', [shortSecret]],
    ['ALLOWED_ORIGINS=* in production', { ...productionEnv(), ALLOWED_ORIGINS: '*' }, 'ALLOWED_ORIGINS'],
    ['APP_ENV not development|production', { APP_ENV: 'staging-ish' }, 'APP_ENV'],
    ['JWT_TTL not a duration', { JWT_TTL: 'an-hour' }, 'JWT_TTL'],
    ['JWT_TTL negative', { JWT_TTL: '-5m' }, 'JWT_TTL'],
    ['JWT_LEEWAY not a duration', { JWT_LEEWAY: 'abc' }, 'JWT_LEEWAY'],
    ['LOGIN_RATE_LIMIT not a number', { LOGIN_RATE_LIMIT: 'lots' }, 'LOGIN_RATE_LIMIT'],
    ['LOGIN_RATE_LIMIT bad window', { LOGIN_RATE_LIMIT: '3/soon' }, 'LOGIN_RATE_LIMIT'],
    ['ENCRYPTION_MASTER_KEY of 16 bytes', { ENCRYPTION_MASTER_KEY: 'c2l4dGVlbi1ieXRlcy1rZXk=' }, 'ENCRYPTION_MASTER_KEY', ['c2l4dGVlbi1ieXRlcy1rZXk=']],
    ['ENCRYPTION_MASTER_KEY of 33 bytes', { ENCRYPTION_MASTER_KEY: Buffer.alloc(33, 7).toString('base64') }, 'ENCRYPTION_MASTER_KEY'],
    ['ENCRYPTION_MASTER_KEY not base64', { ENCRYPTION_MASTER_KEY: '!!!not base64 at all, not even close!!!' }, 'ENCRYPTION_MASTER_KEY'],
    ['USERS_FILE missing', { USERS_FILE: '/nonexistent/jetsocket/users.json' }, 'USERS_FILE'],
    ['USERS_FILE not JSON', { USERS_FILE: writeTemp('users.json', '[{"username": "x",') }, 'USERS_FILE'],
    ['CLIENT_EVENT_RATE not a number', { CLIENT_EVENT_RATE: 'fast' }, 'CLIENT_EVENT_RATE'],
    ['MAX_PAYLOAD_BYTES not a number', { MAX_PAYLOAD_BYTES: 'big' }, 'MAX_PAYLOAD_BYTES'],
    ['MAX_PAYLOAD_BYTES negative', { MAX_PAYLOAD_BYTES: '-1' }, 'MAX_PAYLOAD_BYTES'],
    ['LOG_FORMAT unknown', { LOG_FORMAT: 'xml' }, 'LOG_FORMAT'],
    ['LOG_LEVEL unknown', { LOG_LEVEL: 'loudest' }, 'LOG_LEVEL'],
  ];
  for (const [what, env, name, leaked] of refusals) {
    test(`${what} -> exit non-zero naming ${name}`, async () => {
      assertRefused(await runServerExpectingExit(env), name, leaked);
    });
  }
});

describe('good configuration takes effect', () => {
  test('a complete production configuration starts (control for the refusals above)', async () => {
    const srv = await startServer(productionEnv());
    try {
      const res = await request(`${srv.url}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { status: 'ok' });
    } finally { await srv.stop(); }
  });

  test('ALLOWED_ORIGINS=* is accepted in development', async () => {
    const srv = await startServer({ ALLOWED_ORIGINS: '*' });
    await srv.stop();
  });

  test('development without JWT_SECRET: random secret per start, with a warning', async () => {
    const a = await startServer({ JWT_SECRET: undefined });
    const b = await startServer({ JWT_SECRET: undefined });
    const clients = new Clients();
    try {
      assert.match(a.output(), /JWT_SECRET/, `a warning names JWT_SECRET; output:\n${a.output()}`);
      const tokA = (await login(a.url, 'alice', 'alice123')).body.token;
      const tokB = (await login(b.url, 'alice', 'alice123')).body.token;
      // Each server accepts its own tokens...
      await connect(a.url, tokA, { clients });
      await connect(b.url, tokB, { clients });
      // ...but not the other's, nor one signed with the fixed test secret.
      assert.equal(refusalStatus(await expectRefused(a.url, tokB, { transports: ['polling'] })), 401);
      assert.equal(refusalStatus(await expectRefused(b.url, mint(), { transports: ['polling'] })), 401);
      assertNoLeak(a.output() + b.output(), [tokA, tokB], 'token');
    } finally {
      clients.closeAll();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('JWT_TTL=2m sets exp and expires_at; JWT_ISSUER/JWT_AUDIENCE go into the token', async () => {
    const srv = await startServer({ JWT_TTL: '2m', JWT_ISSUER: 'https://issuer.example', JWT_AUDIENCE: 'jetsocket-e2e' });
    try {
      const res = await login(srv.url, 'bob', 'bob123');
      assert.equal(res.status, 200);
      const { payload } = decodeJwt(res.body.token);
      assert.ok(Math.abs(payload.exp - payload.iat - 120) <= 1, `exp - iat = ${payload.exp - payload.iat}`);
      assert.ok(Math.abs(payload.exp - nowSeconds() - 120) <= 5);
      assert.ok(Math.abs(Date.parse(res.body.expires_at) / 1000 - payload.exp) <= 1);
      assert.equal(payload.iss, 'https://issuer.example');
      const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      assert.deepEqual(aud, ['jetsocket-e2e']);
    } finally { await srv.stop(); }
  });

  test('JWT_LEEWAY=0s refuses a token expired 5 seconds ago (default leeway accepts it)', async () => {
    const token = mint({ exp: nowSeconds() - 5, iat: nowSeconds() - 60 });
    const strict = await startServer({ JWT_LEEWAY: '0s' });
    const lenient = await startServer();
    const clients = new Clients();
    try {
      assert.equal(refusalStatus(await expectRefused(strict.url, token, { transports: ['polling'] })), 401);
      const { info } = await connect(lenient.url, token, { clients });
      assert.equal(info.user_id, '1');
    } finally {
      clients.closeAll();
      await Promise.all([strict.stop(), lenient.stop()]);
    }
  });

  test('a valid ENCRYPTION_MASTER_KEY is accepted and never printed', async () => {
    const key = randomBytes(32).toString('base64');
    const srv = await startServer({ ENCRYPTION_MASTER_KEY: key, LOG_LEVEL: 'debug' });
    try {
      assert.equal((await request(`${srv.url}/healthz`)).status, 200);
    } finally { await srv.stop(); }
    assertNoLeak(srv.output(), [key, TEST_JWT_SECRET], 'configured secret');
  });

  test('LOG_FORMAT=json: every output line is a JSON object', async () => {
    const srv = await startServer({ LOG_FORMAT: 'json', LOG_LEVEL: 'debug', USERS_FILE: writeUsersFile() });
    const clients = new Clients();
    try {
      await login(srv.url, 'nobody', 'nothing-here');
      const { socket } = await connect(srv.url, mint(), { clients, transports: ['websocket'] });
      await ping(socket);
      await expectRefused(srv.url, 'garbage.token.value', { transports: ['polling'] });
    } finally {
      clients.closeAll();
      await srv.stop();
    }
    const lines = srv.output().split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length > 0, 'something was logged');
    for (const l of lines) {
      let v;
      assert.doesNotThrow(() => { v = JSON.parse(l); }, `not JSON: ${l}`);
      assert.equal(typeof v, 'object', `not a JSON object: ${l}`);
    }
  });
});
