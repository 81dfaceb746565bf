// Assertions shared by the end-to-end files.
import assert from 'node:assert/strict';

/**
 * assertJsonError checks a typed JSON error answer: the status, {error: code} and a
 * non-empty string message. `res` is what request()/wsHandshake() return.
 */
export function assertJsonError(res, status, code, context = '') {
  const where = `${context} -> ${res.status} ${res.text}`;
  assert.equal(res.status, status, `status ${where}`);
  assert.match(String(res.headers['content-type'] ?? ''), /application\/json/, `content-type ${where}`);
  assert.ok(res.json && typeof res.json === 'object', `JSON body ${where}`);
  assert.equal(res.json.error, code, `error code ${where}`);
  assert.equal(typeof res.json.message, 'string', `message ${where}`);
  assert.ok(res.json.message.length > 0, `message ${where}`);
}

/**
 * assertNoLeak fails when any secret (or, for JWTs, its signature segment) appears in the
 * process output. The failure message names the secret, not the whole log.
 */
export function assertNoLeak(output, secrets, what = 'secret') {
  for (const s of secrets) {
    if (!s) continue;
    const needles = [s];
    const parts = s.split('.');
    if (parts.length === 3 && parts[2].length >= 16) needles.push(parts[2], parts[1]);
    for (const n of needles) {
      const i = output.indexOf(n);
      if (i >= 0) {
        const end = output.indexOf('\n', i);
        const line = output.slice(output.lastIndexOf('\n', i) + 1, end < 0 ? undefined : end);
        assert.fail(`${what} ${JSON.stringify(n.slice(0, 24))}... appears in the server output:\n${line.slice(0, 400)}`);
      }
    }
  }
}
