// Helpers for the Pusher-compatible HTTP API (PRODUCT §3, §6): the official `pusher` SDK
// pointed at a test server, its answers and errors as {status, json}, and hand-signed raw
// requests (node:crypto only) for the cases the SDK will not produce: stale or future
// timestamps, tampered signatures, bodies changed after signing, non-JSON bodies.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import Pusher from 'pusher';
import { request, withTimeout } from './clients.mjs';

/** App credentials the HTTP API suites start their servers with. */
export const APP = {
  id: '4242',
  key: 'e2e-api-key',
  secret: 'e2e-api-secret-0123456789abcdef0123456789',
};

/**
 * A fixed 32-byte encryption master key, so the tests can derive channel keys themselves.
 * Bytes above 0x7f on purpose: the key must be used as raw bytes, not as text.
 */
export const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 200) & 0xff));
export const MASTER_KEY_B64 = MASTER_KEY.toString('base64');

/** appEnv is the environment that gives a server the APP credentials (plus `extra`). */
export function appEnv(extra = {}) {
  return { APP_ID: APP.id, APP_KEY: APP.key, APP_SECRET: APP.secret, ...extra };
}

/** sdk returns the official Pusher SDK configured for `srv` (overrides for wrong keys etc.). */
export function sdk(srv, overrides = {}) {
  return new Pusher({
    appId: APP.id,
    key: APP.key,
    secret: APP.secret,
    host: '127.0.0.1',
    port: String(srv.port),
    useTLS: false,
    timeout: 10_000,
    ...overrides,
  });
}

/**
 * ok awaits an SDK call that must succeed and resolves {status, json, text}. A rejection
 * fails with the status and body the server sent.
 */
export async function ok(promiseOrThunk, what = 'API call') {
  let res;
  try {
    const p = typeof promiseOrThunk === 'function' ? promiseOrThunk() : promiseOrThunk;
    res = await withTimeout(p, 15_000, what);
  } catch (err) {
    assert.fail(`${what}: expected success, got ${err?.status ?? ''} ${err?.body ?? err?.message ?? err}`);
  }
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  assert.equal(res.status, 200, `${what}: status, body ${text}`);
  return { status: res.status, json, text, headers: Object.fromEntries(res.headers.entries()) };
}

/**
 * refused awaits an SDK call that must fail with an HTTP status and resolves {status, text,
 * json} from the SDK's RequestError (not a network error, not a success).
 */
export async function refused(promiseOrThunk, what = 'API call') {
  let res;
  try {
    const p = typeof promiseOrThunk === 'function' ? promiseOrThunk() : promiseOrThunk;
    res = await withTimeout(p, 15_000, what);
  } catch (err) {
    assert.equal(err?.name, 'PusherRequestError', `${what}: unexpected error ${err?.stack ?? err}`);
    assert.ok(Number.isInteger(err.status), `${what}: no HTTP status (network error?): ${err.error ?? err.message}`);
    let json = null;
    try { json = JSON.parse(err.body); } catch { /* not JSON */ }
    return { status: err.status, text: err.body, json };
  }
  const text = await res.text().catch(() => '');
  return assert.fail(`${what}: expected a refusal, got ${res.status} ${text}`);
}

/** assertApiError checks {status, json:{error, message}} as refused()/signedRequest() give it. */
export function assertApiError(res, status, code, what = '') {
  const where = `${what} -> ${res.status} ${res.text}`;
  assert.equal(res.status, status, `status ${where}`);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json), `JSON object body ${where}`);
  if (code !== undefined) assert.equal(res.json.error, code, `error code ${where}`);
  else assert.equal(typeof res.json.error, 'string', `error code ${where}`);
  assert.equal(typeof res.json.message, 'string', `message ${where}`);
  assert.ok(res.json.message.length > 0, `message ${where}`);
}

export const md5hex = (body) => createHash('md5').update(body).digest('hex');
export const hmacHex = (secret, s) => createHmac('sha256', secret).update(s).digest('hex');
export const nowSec = () => Math.floor(Date.now() / 1000);

/**
 * signedRequest sends one hand-signed API request with node:http and resolves
 * {status, headers, text, json}. The signature is Pusher's: hex HMAC-SHA256 with the secret
 * of "METHOD\nPATH\nk=v&..." over every query parameter but auth_signature, sorted by key.
 *
 * Options: method, path (after /apps/<appId>), appId, params (extra query), body (string or
 * object, JSON-encoded), key, secret, timestamp (seconds), and hooks that break one thing:
 *   signBody   - the body whose md5 goes into body_md5 (default: the body sent)
 *   signPath   - the path that is signed (default: the path requested)
 *   mutate(q)  - edits the final query (a Map-like URLSearchParams) after signing
 */
export function signedRequest(srv, {
  method = 'POST', path, appId = APP.id, params = {}, body, key = APP.key, secret = APP.secret,
  timestamp = nowSec(), signBody, signPath, mutate, headers = {},
} = {}) {
  const fullPath = `/apps/${appId}${path}`;
  const bodyText = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
  const md5Source = signBody === undefined ? bodyText : (typeof signBody === 'string' ? signBody : JSON.stringify(signBody));
  const q = { auth_key: key, auth_timestamp: String(timestamp), auth_version: '1.0', ...params };
  if (md5Source !== undefined && md5Source.length > 0) q.body_md5 = md5hex(md5Source);
  const toSign = [method.toUpperCase(), signPath ? `/apps/${appId}${signPath}` : fullPath,
    Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&')].join('\n');
  const query = new URLSearchParams(q);
  query.set('auth_signature', hmacHex(secret, toSign));
  if (mutate) mutate(query);
  const hdrs = { ...headers };
  if (bodyText !== undefined) {
    hdrs['content-type'] ??= 'application/json';
    hdrs['content-length'] = Buffer.byteLength(bodyText);
  }
  return request(`${srv.url}${fullPath}?${query}`, { method, headers: hdrs, body: bodyText });
}

/** event is a valid /events body (overrides replace or, with undefined, drop fields). */
export function eventBody(overrides = {}) {
  const b = { name: 'e2e-event', data: '{"ok":true}', channel: 'e2e-watch', ...overrides };
  for (const [k, v] of Object.entries(b)) if (v === undefined) delete b[k];
  return b;
}
