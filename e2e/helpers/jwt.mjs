// Token minting for end-to-end tests: valid tokens and every kind of broken one, signed with
// node:crypto so the tests depend on nothing but the wire format (RFC 7519 / RFC 7515).
import { createHmac } from 'node:crypto';
import { TEST_JWT_SECRET } from './server.mjs';

const HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * signJwt encodes header and payload and signs them. `alg` picks the HMAC hash; "none" leaves
 * the signature empty; any other name (e.g. "RS256") is put in the header but signed with
 * HMAC-SHA256, which is exactly the algorithm-confusion attack a verifier must refuse.
 */
export function signJwt(payload, { secret = TEST_JWT_SECRET, alg = 'HS256', header = {} } = {}) {
  const signingInput = `${b64url({ alg, typ: 'JWT', ...header })}.${b64url(payload)}`;
  if (alg === 'none') return `${signingInput}.`;
  const sig = createHmac(HASH[alg] ?? 'sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${sig}`;
}

/** claims returns Alice's claims valid for an hour; keys set to undefined are dropped. */
export function claims(overrides = {}) {
  const now = nowSeconds();
  return {
    sub: '1',
    name: 'Alice Admin',
    role: 'admin',
    groups: ['staff', 'ops'],
    permissions: ['encrypted-channels'],
    iat: now,
    exp: now + 3600,
    ...overrides,
  };
}

/** mint signs claims(overrides) with the test secret (or `opts`). */
export const mint = (overrides = {}, opts = {}) => signJwt(claims(overrides), opts);

/** decodeJwt returns {header, payload} without verifying. */
export function decodeJwt(token) {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
  };
}

/** verifiesWith reports whether the token's HS256 signature matches `secret`. */
export function verifiesWith(token, secret = TEST_JWT_SECRET) {
  const i = token.lastIndexOf('.');
  const expected = createHmac('sha256', secret).update(token.slice(0, i)).digest('base64url');
  return token.slice(i + 1) === expected;
}
