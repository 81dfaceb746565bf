// The "Extending" example of docs/extending.md (PRODUCT §13) end to end, as it stands there
// (examples/extending/docs_test.go proves the file is its code block): built,
// run, and driven with socket.io-client 2.5 and plain HTTP: the custom event with its ack,
// the route behind a Bearer JWT that triggers an encrypted event, the guard and the hook.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { startServer, repoRoot } from './helpers/server.mjs';
import { Clients } from './helpers/clients.mjs';
import { join as joinAs, emitAck, subscribeOk, subscribeFails, record, waitForMatch, flush } from './helpers/channels.mjs';
import { mint } from './helpers/jwt.mjs';
import { appEnv, MASTER_KEY_B64, sdk, ok } from './helpers/pusher.mjs';

const SECURE = 'private-encrypted-secure-chat';
const LOBBY = 'presence-lobby';
const ops = { groups: ['ops'] }; // userClaims() gives no groups, no role, no permissions

describe('the docs/extending.md example', () => {
  let srv;
  const clients = new Clients();

  before(async () => {
    const bin = join(mkdtempSync(join(tmpdir(), 'jetsocket-extending-')), 'extending');
    execFileSync('go', ['build', '-o', bin, './examples/extending'], { cwd: repoRoot, stdio: 'inherit' });
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 }), { bin });
  });
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  test('custom event lobby:say: the ack counts the lobby, the lobby hears it; a bad payload is refused and the socket keeps working', async () => {
    const a = await joinAs(srv.url, clients, 'ext-a');
    const b = await joinAs(srv.url, clients, 'ext-b');
    await subscribeOk(a.socket, LOBBY);
    await subscribeOk(b.socket, LOBBY);
    const heard = record(b.socket, 'lobby:said');
    const ack = await emitAck(a.socket, 'lobby:say', { text: 'hello' });
    assert.deepEqual(ack, { ok: true, heard_by: 2 });
    const said = await waitForMatch(heard, () => true, 5000, 'lobby:said on b');
    assert.deepEqual(said, { channel: LOBBY, data: { user_id: 'ext-a', text: 'hello' } });

    const bad = await emitAck(a.socket, 'lobby:say', 'not an object');
    assert.deepEqual(Object.keys(bad).sort(), ['code', 'error', 'ok', 'status'], JSON.stringify(bad));
    assert.equal(bad.ok, false);
    assert.equal(bad.status, 400);
    assert.equal(bad.code, 'invalid_payload');
    assert.deepEqual(await emitAck(a.socket, 'lobby:say', { text: 'still here' }), { ok: true, heard_by: 2 });
  });

  test('channel hook: joining the lobby sends lobby:welcome to every connection of that user', async () => {
    const first = await joinAs(srv.url, clients, 'ext-w');
    const second = await joinAs(srv.url, clients, 'ext-w');
    const got1 = record(first.socket, 'lobby:welcome');
    const got2 = record(second.socket, 'lobby:welcome');
    await subscribeOk(first.socket, LOBBY);
    for (const got of [got1, got2]) {
      const ev = await waitForMatch(got, () => true, 5000, 'lobby:welcome');
      assert.equal(ev.data.channel, LOBBY, JSON.stringify(ev));
    }
  });

  test('guard: the secure chat is for the ops group only', async () => {
    const member = await joinAs(srv.url, clients, 'ext-ops', ops);
    const other = await joinAs(srv.url, clients, 'ext-staff', { groups: ['staff'], permissions: ['encrypted-channels'] });
    const ack = await subscribeOk(member.socket, SECURE);
    assert.equal(typeof ack.shared_secret, 'string');
    await subscribeFails(other.socket, SECURE, 403, 'forbidden');
  });

  test('route: POST /send-encrypted-message needs a Bearer JWT and triggers an encrypted event only subscribers can open', async () => {
    const sub = await joinAs(srv.url, clients, 'ext-reader', ops);
    const { shared_secret: key } = await subscribeOk(sub.socket, SECURE);
    const got = record(sub.socket, 'secure-message');
    const post = (headers, body = { message: 'the eagle has landed' }) => fetch(`${srv.url}/send-encrypted-message`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
    });

    for (const [what, headers] of [
      ['no Authorization', {}],
      ['a Basic header', { authorization: `Basic ${mint({ sub: 'ext-sender' })}` }],
      ['a token signed with another key', { authorization: `Bearer ${mint({ sub: 'ext-sender' }, { secret: 'another-secret-0123456789abcdef0123456789' })}` }],
      ['an expired token', { authorization: `Bearer ${mint({ sub: 'ext-sender', exp: Math.floor(Date.now() / 1000) - 3600 })}` }],
    ]) {
      const res = await post(headers);
      assert.equal(res.status, 401, what);
      const body = await res.json();
      assert.equal(body.error, 'invalid_token', `${what}: ${JSON.stringify(body)}`);
      assert.equal(typeof body.message, 'string');
    }
    const badBody = await post({ authorization: `Bearer ${mint({ sub: 'ext-sender' })}` }, { nope: 1 });
    assert.equal(badBody.status, 400);
    assert.equal((await badBody.json()).error, 'invalid_request');
    await flush(sub.socket);
    assert.deepEqual(got, [], 'nothing was triggered by a refused request');

    const res = await post({ authorization: `Bearer ${mint({ sub: 'ext-sender' })}` });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
    const ev = await waitForMatch(got, () => true, 5000, 'secure-message');
    assert.equal(ev.channel, SECURE);
    assert.deepEqual(Object.keys(ev.data).sort(), ['ciphertext', 'nonce'], 'the payload is encrypted');
    const plain = nacl.secretbox.open(
      new Uint8Array(Buffer.from(ev.data.ciphertext, 'base64')),
      new Uint8Array(Buffer.from(ev.data.nonce, 'base64')),
      new Uint8Array(Buffer.from(key, 'base64')),
    );
    assert.ok(plain, 'opens with the channel key from the subscribe ack');
    assert.deepEqual(JSON.parse(Buffer.from(plain).toString('utf8')), { from: 'ext-sender', message: 'the eagle has landed' });
  });

  test('the built-in events still work beside the custom ones; an unknown event gets the one refusal shape', async () => {
    const c = await joinAs(srv.url, clients, 'ext-plain');
    assert.deepEqual(await subscribeOk(c.socket, 'news'), { ok: true, channel: 'news' });
    const ack = await emitAck(c.socket, 'lobby:shout', { text: 'x' });
    assert.deepEqual(Object.keys(ack).sort(), ['code', 'error', 'ok', 'status'], JSON.stringify(ack));
    assert.equal(ack.code, 'unknown_event');
    assert.equal(ack.ok, false);
  });
});

// PRODUCT §9: a panic in a developer's event handler, guard or channel hook is
// recovered, logged with its stack and answered as a 500 refusal; the connection and
// the process go on. e2e/testdata/panicky is a server built with the same API whose
// code panics on names containing "boom".
describe('panics in developer code (server.RunWith)', () => {
  let srv;
  const clients = new Clients();

  before(async () => {
    const bin = join(mkdtempSync(join(tmpdir(), 'jetsocket-panicky-')), 'panicky');
    execFileSync('go', ['build', '-o', bin, './e2e/testdata/panicky'], { cwd: repoRoot, stdio: 'inherit' });
    srv = await startServer(appEnv(), { bin });
  });
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  const wantRefusal500 = (ack, channel, what) => {
    assert.deepEqual(ack, { ok: false, ...(channel ? { channel } : {}), status: 500, code: 'internal_error', error: ack.error }, `${what}: ${JSON.stringify(ack)}`);
    assert.doesNotMatch(ack.error, /exploded/, 'the panic\'s text stays in the log');
  };
  const stillServing = async (socket, what) => {
    assert.equal((await emitAck(socket, 'jetsocket:ping', {})).pong, true, `${what}: the connection goes on`);
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200, `${what}: the process goes on`);
  };

  test('a panicking event handler: 500 refusal, the connection and the process go on', async () => {
    const a = await joinAs(srv.url, clients, 'pan-1');
    wantRefusal500(await emitAck(a.socket, 'explode', {}), null, 'explode');
    await stillServing(a.socket, 'event handler');
    assert.match(srv.output(), /socket event handler panicked.*developer code exploded in an event handler.*stack=/);
  });

  test('a panicking guard: 500 refusal with subscription_error; the connection goes on', async () => {
    const a = await joinAs(srv.url, clients, 'pan-2');
    const errs = record(a.socket, 'jetsocket:subscription_error');
    wantRefusal500(await emitAck(a.socket, 'jetsocket:subscribe', { channel: 'private-boom-guard' }), 'private-boom-guard', 'guard');
    const ev = await waitForMatch(errs, (e) => e.channel === 'private-boom-guard', 5000, 'subscription_error');
    assert.equal(ev.status, 500);
    await stillServing(a.socket, 'guard');
    assert.match(srv.output(), /channel guard panicked.*private-boom-guard/);
  });

  test('panicking channel hooks (subscribe, unsubscribe, client event): 500 refusals; leaving still completes', async () => {
    const a = await joinAs(srv.url, clients, 'pan-3');
    const b = await joinAs(srv.url, clients, 'pan-4');
    wantRefusal500(await emitAck(a.socket, 'jetsocket:subscribe', { channel: 'presence-boom-sub' }), 'presence-boom-sub', 'subscribe hook');

    await subscribeOk(a.socket, 'presence-boom-unsub');
    wantRefusal500(await emitAck(a.socket, 'jetsocket:unsubscribe', { channel: 'presence-boom-unsub' }), 'presence-boom-unsub', 'unsubscribe hook');

    await subscribeOk(a.socket, 'presence-boom-client');
    await subscribeOk(b.socket, 'presence-boom-client');
    const relayed = record(b.socket, 'client-hi');
    const errors = record(a.socket, 'jetsocket:error');
    wantRefusal500(await emitAck(a.socket, 'client-hi', { channel: 'presence-boom-client', data: { x: 1 } }), 'presence-boom-client', 'client event hook');
    await waitForMatch(errors, (e) => e.code === 'internal_error', 5000, 'jetsocket:error');
    await flush(b.socket);
    assert.deepEqual(relayed, [], 'relayed although its hook panicked');
    await stillServing(a.socket, 'hooks');

    // A disconnect runs the unsubscribe hook again: the process survives it, and the
    // user still leaves the presence channel.
    const c = await joinAs(srv.url, clients, 'pan-5');
    await subscribeOk(c.socket, 'presence-boom-unsub');
    await subscribeOk(b.socket, 'presence-boom-unsub');
    const removed = record(b.socket, 'jetsocket:member_removed');
    c.socket.close();
    await waitForMatch(removed, (m) => m.user_id === 'pan-5', 5000, 'member_removed for pan-5');
    const users = await ok(sdk(srv).get({ path: '/channels/presence-boom-unsub/users' }), 'users');
    assert.deepEqual(users.json.users.map((u) => u.id), ['pan-4']);
    await stillServing(b.socket, 'disconnect hook');
    for (const what of ['subscribe hook', 'unsubscribe hook', 'client event hook']) {
      assert.match(srv.output(), new RegExp(`${what} panicked`), what);
    }
  });
});
