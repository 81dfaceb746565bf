// The Pusher-compatible HTTP API (PRODUCT §3), driven by the official `pusher` SDK (5.3.4)
// and by hand-signed requests, with socket.io-client 2.x subscribers (§4 delivery):
// trigger and batch delivery, socket_id exclusion, limits, validation, signatures, the app
// id, sendToUser, terminateUserConnections and the channel queries.
//
// "Nothing arrived" checks use flush() (a ping round-trip): on one node the HTTP API hands a
// message to every subscriber's queue before it answers, and a frame queued for a connection
// before its ping is handled arrives before the pong.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { mint } from './helpers/jwt.mjs';
import { connect, ping, sleep, Clients } from './helpers/clients.mjs';
import {
  join, subscribe, subscribeOk, subscribeFails, unsubscribe, record, waitForMatch, waitUntil, flush, disconnected,
  userClaims,
} from './helpers/channels.mjs';
import { assertNoLeak } from './helpers/assert.mjs';
import {
  APP, appEnv, sdk, ok, refused, assertApiError, signedRequest, eventBody, nowSec, hmacHex, md5hex,
} from './helpers/pusher.mjs';

const BAD_REQUEST_CODES = ['invalid_request', 'invalid_channel'];

/** assertBadRequest checks a 400 JSON {error, message} with one of the documented codes. */
function assertBadRequest(res, what) {
  assertApiError(res, 400, undefined, what);
  assert.ok(BAD_REQUEST_CODES.includes(res.json.error), `${what}: error code ${res.json.error} not in ${BAD_REQUEST_CODES}`);
}

/** first waits for the first recorded payload. */
const first = (rec, what, ms = 5000) => waitForMatch(rec, () => true, ms, what);

/** pollUntil calls async `fn` every 50 ms until `done(value)`; resolves the last value after `ms` at most. */
async function pollUntil(fn, done, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (done(v) || Date.now() > deadline) return v;
    await sleep(50);
  }
}

describe('HTTP API: trigger, batch and delivery', () => {
  let srv;
  let pusher;
  const clients = new Clients();
  before(async () => {
    srv = await startServer(appEnv());
    pusher = sdk(srv);
  });
  after(async () => {
    clients.closeAll();
    const out = srv?.output() ?? '';
    await srv?.stop();
    assertNoLeak(out, [APP.secret], 'APP_SECRET');
  });

  test('trigger on a public channel reaches websocket and default-transport subscribers as {channel, data}', async () => {
    const ch = 'news-public';
    const { socket: ws } = await join(srv.url, clients, 'pub-ws');
    const { socket: dflt } = await connect(srv.url, mint(userClaims('pub-default')), { clients });
    const { socket: outsider } = await join(srv.url, clients, 'pub-out');
    await subscribeOk(ws, ch);
    await subscribeOk(dflt, ch);
    await subscribeOk(outsider, 'news-elsewhere');
    const got = { ws: record(ws, 'headline'), dflt: record(dflt, 'headline'), outsider: record(outsider, 'headline') };

    const data = { text: 'hello', n: 1, nested: { list: [1, 'two', null, true] }, uni: 'caf\u00e9 \u2713' };
    const res = await ok(pusher.trigger(ch, 'headline', data), 'trigger object');
    assert.deepEqual(res.json, {}, 'trigger answers {}');
    const expected = { channel: ch, data };
    assert.deepEqual(await first(got.ws, 'headline on websocket client'), expected);
    assert.deepEqual(await first(got.dflt, 'headline on default-options client'), expected);
    await flush(ws, dflt, outsider);
    assert.equal(got.ws.length, 1, 'delivered once');
    assert.equal(got.dflt.length, 1, 'delivered once');
    assert.deepEqual(got.outsider, [], 'a subscriber of another channel does not get it');
  });

  test('data: a non-JSON string arrives as the string, a JSON string as its value', async () => {
    const ch = 'data-kinds';
    const { socket } = await join(srv.url, clients, 'data-1');
    await subscribeOk(socket, ch);
    const cases = [
      ['plain string', 'hello', 'hello'],
      ['string with spaces and quotes', 'say "hi" {not json', 'say "hi" {not json'],
      ['JSON array string', '[1,2,3]', [1, 2, 3]],
      ['JSON string of a string', '"quoted"', 'quoted'],
      ['number (SDK JSON-encodes it)', 42, 42],
      ['boolean', false, false],
      ['array', ['a', { b: 2 }], ['a', { b: 2 }]],
      ['empty object', {}, {}],
    ];
    for (const [i, [what, sent, want]] of cases.entries()) {
      const rec = record(socket, `kind-${i}`);
      await ok(pusher.trigger(ch, `kind-${i}`, sent), `trigger ${what}`);
      assert.deepEqual(await first(rec, what), { channel: ch, data: want }, what);
      rec.stop();
    }
  });

  test('trigger to several channels: each subscriber gets the event under its channel name', async () => {
    const chans = ['multi-a', 'multi-b', 'multi-c'];
    const { socket: a } = await join(srv.url, clients, 'multi-1');
    const { socket: both } = await join(srv.url, clients, 'multi-2');
    await subscribeOk(a, 'multi-a');
    await subscribeOk(both, 'multi-b');
    await subscribeOk(both, 'multi-c');
    const gotA = record(a, 'fan');
    const gotBoth = record(both, 'fan');
    await ok(pusher.trigger(chans, 'fan', { v: 7 }), 'trigger 3 channels');
    assert.deepEqual(await first(gotA, 'fan on a'), { channel: 'multi-a', data: { v: 7 } });
    await waitUntil(() => gotBoth.length >= 2, 5000, () => `two fan events on both; got ${JSON.stringify(gotBoth)}`);
    await flush(a, both);
    assert.equal(gotA.length, 1, 'a gets one');
    assert.deepEqual([...gotBoth].sort((x, y) => x.channel.localeCompare(y.channel)),
      [{ channel: 'multi-b', data: { v: 7 } }, { channel: 'multi-c', data: { v: 7 } }],
      'a connection on two of the channels gets one event per channel');
  });

  test('rule-guarded channels (private-user-, private-group-, presence-) get triggers; a refused subscriber does not', async () => {
    const { socket: owner } = await join(srv.url, clients, 'g7');
    const { socket: member } = await join(srv.url, clients, 'g8', { groups: ['crew'] });
    const { socket: visitor } = await join(srv.url, clients, 'g9');
    await subscribeOk(owner, 'private-user-g7');
    await subscribeOk(member, 'private-group-crew');
    await subscribeOk(visitor, 'presence-lobby');
    await subscribeFails(visitor, 'private-user-g7', 403);
    await subscribeFails(visitor, 'private-group-crew', 403);
    const got = { owner: record(owner, 'ping-all'), member: record(member, 'ping-all'), visitor: record(visitor, 'ping-all') };
    await ok(pusher.trigger(['private-user-g7', 'private-group-crew', 'presence-lobby'], 'ping-all', 'x'), 'trigger guarded');
    assert.deepEqual(await first(got.owner, 'owner'), { channel: 'private-user-g7', data: 'x' });
    assert.deepEqual(await first(got.member, 'member'), { channel: 'private-group-crew', data: 'x' });
    assert.deepEqual(await first(got.visitor, 'visitor'), { channel: 'presence-lobby', data: 'x' });
    await flush(owner, member, visitor);
    assert.equal(got.visitor.length, 1, 'the refused subscriber got only its presence event');
  });

  test('trigger to a channel nobody is on is accepted', async () => {
    const res = await ok(pusher.trigger('nobody-here', 'e', { a: 1 }), 'trigger empty channel');
    assert.deepEqual(res.json, {});
  });

  test('socket_id excludes exactly that connection (single, multi-channel and batch triggers)', async () => {
    const { socket: a, info: ia } = await join(srv.url, clients, 'ex-a');
    const { socket: a2 } = await join(srv.url, clients, 'ex-a'); // the same user's other connection
    const { socket: b } = await join(srv.url, clients, 'ex-b');
    assert.match(ia.socket_id, /^\d+\.\d+$/, 'socket_id has Pusher form');
    for (const s of [a, a2, b]) { await subscribeOk(s, 'excl-1'); await subscribeOk(s, 'excl-2'); }
    const got = { a: record(a, 'ex'), a2: record(a2, 'ex'), b: record(b, 'ex') };

    await ok(pusher.trigger('excl-1', 'ex', { n: 1 }, { socket_id: ia.socket_id }), 'trigger excluding a');
    await ok(pusher.trigger(['excl-1', 'excl-2'], 'ex', { n: 2 }, { socket_id: ia.socket_id }), 'multi excluding a');
    await ok(pusher.triggerBatch([{ channel: 'excl-2', name: 'ex', data: { n: 3 }, socket_id: ia.socket_id }]), 'batch excluding a');
    await ok(pusher.trigger('excl-1', 'ex', { n: 4 }, { socket_id: '1.1' }), 'unknown socket_id excludes nobody');
    await ok(pusher.trigger('excl-1', 'ex', { n: 5 }), 'no socket_id');

    for (const k of ['a2', 'b']) {
      await waitUntil(() => got[k].some((p) => p.data.n === 5), 5000, () => `${k} gets n=5; got ${JSON.stringify(got[k])}`);
    }
    await waitUntil(() => got.a.some((p) => p.data.n === 5), 5000, () => `a gets n=5; got ${JSON.stringify(got.a)}`);
    await flush(a, a2, b);
    const ns = (rec) => rec.map((p) => `${p.channel}:${p.data.n}`);
    assert.deepEqual(ns(got.a), ['excl-1:4', 'excl-1:5'], 'the excluded connection got only the unexcluded triggers');
    for (const k of ['a2', 'b']) {
      assert.deepEqual(ns(got[k]).sort(), ['excl-1:1', 'excl-1:2', 'excl-1:4', 'excl-1:5', 'excl-2:2', 'excl-2:3'],
        `${k} got everything (a socket_id excludes a connection, not a user)`);
    }
  });

  test('triggerBatch of 10 events: all delivered, in order per channel', async () => {
    const { socket: a } = await join(srv.url, clients, 'batch-a');
    const { socket: b } = await join(srv.url, clients, 'batch-b');
    await subscribeOk(a, 'batch-1');
    await subscribeOk(b, 'batch-2');
    const gotA = record(a, 'b-ev');
    const gotB = record(b, 'b-ev');
    const batch = Array.from({ length: 10 }, (_, i) => ({ channel: i % 2 ? 'batch-2' : 'batch-1', name: 'b-ev', data: { i } }));
    const res = await ok(pusher.triggerBatch(batch), 'batch of 10');
    assert.ok(res.json && typeof res.json === 'object', `batch answers a JSON object: ${res.text}`);
    await waitUntil(() => gotA.length >= 5 && gotB.length >= 5, 5000, () => `5+5 batch events; got ${gotA.length}+${gotB.length}`);
    await flush(a, b);
    assert.deepEqual(gotA, [0, 2, 4, 6, 8].map((i) => ({ channel: 'batch-1', data: { i } })));
    assert.deepEqual(gotB, [1, 3, 5, 7, 9].map((i) => ({ channel: 'batch-2', data: { i } })));
  });

  test('100 channels is accepted; 101 channels and 11 batch events are refused with 400 and nothing is sent', async () => {
    const chans = Array.from({ length: 101 }, (_, i) => `many-${i}`);
    const { socket } = await join(srv.url, clients, 'many');
    for (const ch of ['many-0', 'many-57', 'many-99', 'many-100']) await subscribeOk(socket, ch);
    const got = record(socket, 'many-ev');

    await ok(pusher.trigger(chans.slice(0, 100), 'many-ev', { n: 100 }), 'trigger 100 channels');
    await waitUntil(() => got.length >= 3, 5000, () => `3 events; got ${JSON.stringify(got)}`);
    assert.throws(() => pusher.trigger(chans, 'many-ev', { n: 101 }), /more than 100 channels/, 'the SDK refuses 101 itself');
    assertBadRequest(await refused(pusher.post({ path: '/events', body: { name: 'many-ev', data: '{"n":101}', channels: chans } }), '101 channels'), '101 channels');

    const eleven = Array.from({ length: 11 }, (_, i) => ({ channel: 'many-0', name: 'many-ev', data: { batch: i } }));
    assertBadRequest(await refused(pusher.triggerBatch(eleven), '11 batch events'), '11 batch events');
    assertBadRequest(await refused(pusher.post({ path: '/batch_events', body: { batch: [] } }), 'empty batch'), 'empty batch');

    await flush(socket);
    assert.deepEqual([...got].sort((x, y) => x.channel.localeCompare(y.channel)),
      ['many-0', 'many-57', 'many-99'].map((channel) => ({ channel, data: { n: 100 } })),
      'only the 100-channel trigger was delivered, to the 100 channels only');
  });

  test('a batch with one bad event is refused whole: 400 and none of its good events are sent', async () => {
    const { socket } = await join(srv.url, clients, 'batch-bad');
    await subscribeOk(socket, 'batch-good');
    const got = record(socket, 'bb');
    const good = { channel: 'batch-good', name: 'bb', data: '"good"' };
    const bads = [
      ['an invalid channel', { channel: 'bad channel', name: 'bb', data: '"x"' }],
      ['a reserved name', { channel: 'batch-good', name: 'jetsocket:subscription_succeeded', data: '"x"' }],
      ['data not a string', { channel: 'batch-good', name: 'bb', data: { x: 1 } }],
      ['a missing name', { channel: 'batch-good', data: '"x"' }],
      ['a bad socket_id', { channel: 'batch-good', name: 'bb', data: '"x"', socket_id: 'abc' }],
      ['too large data', { channel: 'batch-good', name: 'bb', data: JSON.stringify('x'.repeat(10_300)) }],
    ];
    for (const [what, bad] of bads) {
      const res = await refused(pusher.post({ path: '/batch_events', body: { batch: [good, good, bad, good] } }), what);
      assert.ok([400, 413].includes(res.status), `batch with ${what}: ${res.status} ${res.text}`);
      assertApiError(res, res.status, undefined, `batch with ${what}`);
    }
    await flush(socket);
    assert.deepEqual(got, [], 'nothing of a refused batch was delivered');
  });

  test('bad /events bodies -> 400 JSON {error, message}, nothing delivered', async () => {
    const { socket } = await join(srv.url, clients, 'bad-body');
    await subscribeOk(socket, 'e2e-watch');
    const got = record(socket, 'e2e-event');
    const gotReserved = record(socket, 'jetsocket:subscription_succeeded');
    const cases = [
      ['not JSON at all', 'this is not json {'],
      ['a JSON array', '[]'],
      ['truncated JSON', '{"name":"e2e-event","data":"x","channel":"e2e-watch"'],
      ['missing name', eventBody({ name: undefined })],
      ['empty name', eventBody({ name: '' })],
      ['a 201-character name', eventBody({ name: 'n'.repeat(201) })],
      ['a name starting with jetsocket:', eventBody({ name: 'jetsocket:subscription_succeeded' })],
      ['missing data', eventBody({ data: undefined })],
      ['data as an object', eventBody({ data: { ok: true } })],
      ['data as a number', eventBody({ data: 5 })],
      ['data as null', eventBody({ data: null })],
      ['both channel and channels', eventBody({ channels: ['e2e-watch', 'other'] })],
      ['no channel at all', eventBody({ channel: undefined })],
      ['empty channels', eventBody({ channel: undefined, channels: [] })],
      ['a channel with a space', eventBody({ channel: 'bad channel' })],
      ['a channel with a star', eventBody({ channel: 'bad*channel' })],
      ['a 165-character channel', eventBody({ channel: 'c'.repeat(165) })],
      ['one invalid channel among valid ones', eventBody({ channel: undefined, channels: ['e2e-watch', 'bad/channel'] })],
      ['an empty #server-to-user- id', eventBody({ channel: '#server-to-user-' })],
      ['socket_id not digits.digits (letters)', eventBody({ socket_id: 'abc.def' })],
      ['socket_id without a dot', eventBody({ socket_id: '1234' })],
      ['socket_id with two dots', eventBody({ socket_id: '1.2.3' })],
      ['socket_id as a number', eventBody({ socket_id: 12.34 })],
    ];
    // Every case is tried before failing, so one report names all the bodies that got through.
    const wrong = [];
    for (const [what, body] of cases) {
      const res = await signedRequest(srv, { path: '/events', body });
      try {
        assertBadRequest(res, what);
        assert.match(String(res.headers['content-type']), /application\/json/, `${what}: content-type`);
      } catch (err) {
        wrong.push(`${what}: body ${typeof body === 'string' ? body : JSON.stringify(body)} -> ${res.status} ${res.text}`);
      }
    }
    // The same through the SDK, whose checks a reserved name passes.
    assertBadRequest(await refused(pusher.trigger('e2e-watch', 'jetsocket:connection_established', { socket_id: '1.1' }), 'SDK reserved name'), 'SDK reserved name');
    await flush(socket);
    assert.deepEqual(wrong, [], 'every bad body is refused with 400 JSON {error, message}');
    assert.deepEqual(got, [], 'no refused trigger was delivered');
    // Recorded after subscribeOk, which has already seen the real subscription_succeeded.
    assert.equal(gotReserved.length, 0, 'no spoofed subscription_succeeded arrived');
  });

  test('data size: exactly MAX_PAYLOAD_BYTES (10240) is delivered; one byte more -> 413 JSON, counted in bytes', async () => {
    const { socket } = await join(srv.url, clients, 'size');
    await subscribeOk(socket, 'size-ch');
    const got = record(socket, 'big');
    const atLimit = 'x'.repeat(10_240);
    await ok(pusher.trigger('size-ch', 'big', atLimit), '10240 bytes');
    assert.deepEqual(await first(got, '10240-byte event'), { channel: 'size-ch', data: atLimit });
    const atLimitUtf8 = '\u00e9'.repeat(5120); // 10240 bytes, 5120 characters
    await ok(pusher.trigger('size-ch', 'big', atLimitUtf8), '10240 bytes of 2-byte characters');
    await waitUntil(() => got.length >= 2, 5000, 'second big event');
    assert.equal(got[1].data, atLimitUtf8);

    assertApiError(await refused(pusher.trigger('size-ch', 'big', 'x'.repeat(10_241)), '10241 bytes'), 413, undefined, '10241 bytes');
    assertApiError(await refused(pusher.trigger('size-ch', 'big', '\u00e9'.repeat(5121)), '10242 bytes in 5121 characters'), 413, undefined, '5121 two-byte characters');
    assertApiError(await refused(pusher.triggerBatch([{ channel: 'size-ch', name: 'big', data: 'y'.repeat(10_241) }]), 'batch 10241'), 413, undefined, 'batch event of 10241 bytes');
    await flush(socket);
    assert.equal(got.length, 2, 'oversized events were not delivered');
  });

  test('a batch of 10 maximum-size events fits the body limit; a body over 10*MAX_PAYLOAD_BYTES+256KiB -> 413', async () => {
    const { socket } = await join(srv.url, clients, 'bodysize');
    await subscribeOk(socket, 'body-ch');
    const got = record(socket, 'full');
    const batch = Array.from({ length: 10 }, (_, i) => ({ channel: 'body-ch', name: 'full', data: String.fromCharCode(97 + i).repeat(10_240) }));
    await ok(pusher.triggerBatch(batch), 'batch of 10 x 10240 bytes');
    await waitUntil(() => got.length >= 10, 10_000, () => `10 full events; got ${got.length}`);
    assert.deepEqual(got.map((p) => p.data.length), Array(10).fill(10_240));

    const limit = 10 * 10_240 + 256 * 1024;
    const body = JSON.stringify({ name: 'full', channel: 'body-ch', data: 'z'.repeat(limit) });
    assert.ok(body.length > limit);
    const res = await signedRequest(srv, { path: '/events', body });
    assertApiError(res, 413, undefined, 'body over the limit');
    await flush(socket);
    assert.equal(got.length, 10, 'the oversized body was not delivered');
    assert.equal((await ping(socket)).pong, true, 'connection still serves');
  });

  test('signatures: hand-signed requests pass; wrong secret, tampering, stale or future timestamps, wrong key -> 401 invalid_signature', async () => {
    const { socket } = await join(srv.url, clients, 'sig');
    await subscribeOk(socket, 'sig-ok');
    await subscribeOk(socket, 'sig-watch');
    const gotOk = record(socket, 'signed');
    const gotBad = record(socket, 'forged');
    const okBody = eventBody({ name: 'signed', channel: 'sig-ok', data: '"fine"' });

    // Controls: the helper signs as Pusher does, so the refusals below are about one change each.
    let res = await signedRequest(srv, { path: '/events', body: okBody });
    assert.equal(res.status, 200, `hand-signed request: ${res.status} ${res.text}`);
    res = await signedRequest(srv, { path: '/events', body: okBody, timestamp: nowSec() - 500 });
    assert.equal(res.status, 200, `timestamp 500 s old is inside the window: ${res.status} ${res.text}`);
    res = await signedRequest(srv, { method: 'GET', path: '/channels', params: { filter_by_prefix: 'sig-', info: 'subscription_count' } });
    assert.equal(res.status, 200, `hand-signed GET: ${res.status} ${res.text}`);
    await waitUntil(() => gotOk.length >= 2, 5000, 'the two signed triggers');

    const body = eventBody({ name: 'forged', channel: 'sig-watch', data: '"forged"' });
    const other = eventBody({ name: 'forged', channel: 'sig-watch', data: '"changed after signing"' });
    const cases = [
      ['a wrong secret', { secret: 'not-the-secret-0123456789abcdef0123' }],
      ['a wrong auth_key', { key: 'someone-elses-key' }],
      ['a timestamp 700 s old', { timestamp: nowSec() - 700 }],
      ['a timestamp 700 s ahead', { timestamp: nowSec() + 700 }],
      ['a timestamp that is not a number', { timestamp: 'yesterday' }],
      ['auth_version 2.0', { params: { auth_version: '2.0' } }],
      ['a flipped signature character', { mutate: (q) => { const s = q.get('auth_signature'); q.set('auth_signature', (s[0] === 'a' ? 'b' : 'a') + s.slice(1)); } }],
      ['a truncated signature', { mutate: (q) => q.set('auth_signature', q.get('auth_signature').slice(0, 32)) }],
      ['no auth_signature', { mutate: (q) => q.delete('auth_signature') }],
      ['no auth_timestamp', { mutate: (q) => q.delete('auth_timestamp') }],
      ['no auth_key', { mutate: (q) => q.delete('auth_key') }],
      ['no body_md5', { mutate: (q) => q.delete('body_md5') }],
      ['the body changed after signing', { body: other, signBody: body }],
      ['the body changed and body_md5 recomputed, signature kept', { body: other, signBody: body, mutate: (q) => q.set('body_md5', md5hex(JSON.stringify(other))) }],
      ['a query parameter added after signing', { mutate: (q) => q.set('socket_id', '1.2') }],
      ['a timestamp changed after signing', { mutate: (q) => q.set('auth_timestamp', String(Number(q.get('auth_timestamp')) - 1)) }],
      ['the signature of another path', { signPath: '/batch_events' }],
    ];
    for (const [what, opts] of cases) {
      res = await signedRequest(srv, { path: '/events', body, ...opts });
      assertApiError(res, 401, 'invalid_signature', what);
      assert.ok(!res.text.includes(APP.secret), `${what}: the answer does not contain the secret`);
    }
    // A correct signature for the request must not be revealed by the refusal of a wrong one.
    const ts = nowSec();
    res = await signedRequest(srv, { path: '/events', body, timestamp: ts, secret: 'wrong-secret-wrong-secret-wrong' });
    assertApiError(res, 401, 'invalid_signature', 'wrong secret');
    const q = { auth_key: APP.key, auth_timestamp: String(ts), auth_version: '1.0', body_md5: md5hex(JSON.stringify(body)) };
    const right = hmacHex(APP.secret, ['POST', `/apps/${APP.id}/events`, Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&')].join('\n'));
    assert.ok(!res.text.includes(right), 'the refusal does not reveal the expected signature');

    // Unsigned requests and the SDK with wrong credentials.
    res = await signedRequest(srv, { path: '/events', body, mutate: (q2) => { for (const k of [...q2.keys()]) q2.delete(k); } });
    assertApiError(res, 401, 'invalid_signature', 'unsigned POST');
    res = await signedRequest(srv, { method: 'GET', path: '/channels', params: { info: 'subscription_count' }, mutate: (q2) => q2.set('info', 'user_count') });
    assertApiError(res, 401, 'invalid_signature', 'GET with a parameter changed after signing');
    assertApiError(await refused(sdk(srv, { secret: 'wrong-secret-0123456789abcdef' }).trigger('sig-watch', 'forged', 'x'), 'SDK wrong secret'), 401, 'invalid_signature', 'SDK wrong secret');
    assertApiError(await refused(sdk(srv, { key: 'wrong-key' }).trigger('sig-watch', 'forged', 'x'), 'SDK wrong key'), 401, 'invalid_signature', 'SDK wrong key');
    assertApiError(await refused(sdk(srv, { secret: 'wrong-secret-0123456789abcdef' }).get({ path: '/channels' }), 'SDK GET wrong secret'), 401, 'invalid_signature', 'SDK GET wrong secret');
    assertApiError(await refused(sdk(srv, { secret: 'wrong-secret-0123456789abcdef' }).terminateUserConnections('sig'), 'SDK terminate wrong secret'), 401, 'invalid_signature', 'SDK terminate wrong secret');

    await flush(socket);
    assert.deepEqual(gotBad, [], 'no refused request was delivered');
    assert.equal(gotOk.length, 2, 'the signed controls were delivered once each');
    assert.equal(socket.connected, true, 'the terminate with a wrong secret closed nothing');
  });

  test('a wrong app id in the path -> 403 unknown_app (correctly signed otherwise), nothing delivered', async () => {
    const { socket } = await join(srv.url, clients, 'wrong-app');
    await subscribeOk(socket, 'app-watch');
    const got = record(socket, 'app-ev');
    const other = sdk(srv, { appId: '9999' });
    assertApiError(await refused(other.trigger('app-watch', 'app-ev', { a: 1 }), 'trigger'), 403, 'unknown_app', 'trigger, app 9999');
    assertApiError(await refused(other.triggerBatch([{ channel: 'app-watch', name: 'app-ev', data: 'x' }]), 'batch'), 403, 'unknown_app', 'batch, app 9999');
    assertApiError(await refused(other.get({ path: '/channels' }), 'channels'), 403, 'unknown_app', 'GET channels, app 9999');
    assertApiError(await refused(other.terminateUserConnections('wrong-app'), 'terminate'), 403, 'unknown_app', 'terminate, app 9999');
    const res = await signedRequest(srv, { path: '/events', appId: `${APP.id}0`, body: eventBody({ channel: 'app-watch', name: 'app-ev' }) });
    assertApiError(res, 403, 'unknown_app', `app ${APP.id}0`);
    await flush(socket);
    assert.deepEqual(got, [], 'nothing delivered for a wrong app');
    assert.equal(socket.connected, true, 'terminate for a wrong app closed nothing');
  });

  test('sendToUser reaches every connection of that user as #server-to-user-<id>, nobody else', async () => {
    const { socket: u1 } = await join(srv.url, clients, 'stu-1');
    const { socket: u2 } = await connect(srv.url, mint(userClaims('stu-1')), { clients }); // default transports
    const { socket: other } = await join(srv.url, clients, 'stu-2');
    const { socket: prefix } = await join(srv.url, clients, 'stu-10'); // id sharing a prefix
    const got = { u1: record(u1, 'note'), u2: record(u2, 'note'), other: record(other, 'note'), prefix: record(prefix, 'note') };
    await ok(pusher.sendToUser('stu-1', 'note', { text: 'hi' }), 'sendToUser');
    await ok(pusher.sendToUser('stu-1', 'note', 'plain'), 'sendToUser string');
    await ok(pusher.sendToUser('nobody-connected', 'note', { text: 'void' }), 'sendToUser offline user');
    const expected = [{ channel: '#server-to-user-stu-1', data: { text: 'hi' } }, { channel: '#server-to-user-stu-1', data: 'plain' }];
    for (const k of ['u1', 'u2']) {
      await waitUntil(() => got[k].length >= 2, 5000, () => `2 notes on ${k}; got ${JSON.stringify(got[k])}`);
    }
    await flush(u1, u2, other, prefix);
    assert.deepEqual(got.u1, expected);
    assert.deepEqual(got.u2, expected);
    assert.deepEqual(got.other, [], 'another user does not get it');
    assert.deepEqual(got.prefix, [], 'a user whose id starts with the same characters does not get it');
  });

  test('a subscriber cannot subscribe to #server-to-user- channels itself', async () => {
    const { socket } = await join(srv.url, clients, 'stu-spy');
    const { ack } = await subscribe(socket, '#server-to-user-stu-1');
    assert.equal(ack?.ok, false, `subscribe to another user's internal channel: ${JSON.stringify(ack)}`);
    const got = record(socket, 'note');
    await ok(pusher.sendToUser('stu-1', 'note', 'private'), 'sendToUser');
    await flush(socket);
    assert.deepEqual(got, [], 'the spy got nothing');
  });

  test('terminateUserConnections closes every connection of that user; others stay; the user may connect again', async () => {
    const { socket: t1 } = await join(srv.url, clients, 'term-1');
    const { socket: t2 } = await connect(srv.url, mint(userClaims('term-1')), { clients });
    const { socket: stay } = await join(srv.url, clients, 'term-2');
    const { socket: prefix } = await join(srv.url, clients, 'term-10');
    const gone = [disconnected(t1), disconnected(t2)];
    const res = await ok(pusher.terminateUserConnections('term-1'), 'terminate');
    assert.deepEqual(res.json, {}, 'terminate answers {}');
    await Promise.all(gone);
    assert.equal(t1.connected, false);
    assert.equal(t2.connected, false);
    assert.equal((await ping(stay)).pong, true, 'another user stays connected');
    assert.equal((await ping(prefix)).pong, true, 'a user whose id shares the prefix stays connected');
    assert.equal(stay.connected && prefix.connected, true);
    await ok(pusher.terminateUserConnections('nobody-connected'), 'terminate an offline user');

    const { socket: again } = await join(srv.url, clients, 'term-1');
    await subscribeOk(again, 'after-terminate');
    const got = record(again, 'back');
    await ok(pusher.trigger('after-terminate', 'back', 1), 'trigger after reconnect');
    assert.deepEqual(await first(got, 'event after reconnect'), { channel: 'after-terminate', data: 1 });
  });
});

describe('HTTP API: channel queries', () => {
  let srv;
  let pusher;
  const clients = new Clients();
  const s = {};
  const get = async (path, params) => (await ok(pusher.get({ path, params }), `GET ${path} ${JSON.stringify(params ?? {})}`)).json;

  before(async () => {
    srv = await startServer(appEnv());
    pusher = sdk(srv);
    s.u1a = (await join(srv.url, clients, 'q1')).socket;
    s.u1b = (await join(srv.url, clients, 'q1')).socket;
    s.u2 = (await join(srv.url, clients, 'q2', { groups: ['g'] })).socket;
    s.u3 = (await join(srv.url, clients, 'q3')).socket;
    for (const x of [s.u1a, s.u1b, s.u2]) await subscribeOk(x, 'presence-room');
    await subscribeOk(s.u3, 'presence-other');
    await subscribeOk(s.u1a, 'news');
    await subscribeOk(s.u2, 'news');
    await subscribeOk(s.u3, 'private-user-q3');
    await subscribeOk(s.u2, 'private-group-g');
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('GET /channels lists exactly the occupied channels, never the internal #server-to-user- ones', async () => {
    assert.deepEqual(await get('/channels'), {
      channels: { 'presence-room': {}, 'presence-other': {}, news: {}, 'private-user-q3': {}, 'private-group-g': {} },
    });
    const res = await signedRequest(srv, { method: 'GET', path: '/channels', params: { filter_by_prefix: '#' } });
    assert.equal(res.status, 200, `filter_by_prefix=#: ${res.status} ${res.text}`);
    assert.deepEqual(res.json, { channels: {} }, 'internal channels are not listed even when asked for by prefix');
  });

  test('GET /channels?info=subscription_count and filter_by_prefix', async () => {
    assert.deepEqual(await get('/channels', { info: 'subscription_count' }), {
      channels: {
        'presence-room': { subscription_count: 3 }, 'presence-other': { subscription_count: 1 }, news: { subscription_count: 2 },
        'private-user-q3': { subscription_count: 1 }, 'private-group-g': { subscription_count: 1 },
      },
    });
    assert.deepEqual(await get('/channels', { filter_by_prefix: 'private-' }), { channels: { 'private-user-q3': {}, 'private-group-g': {} } });
    assert.deepEqual(await get('/channels', { filter_by_prefix: 'nothing-' }), { channels: {} });
  });

  test('GET /channels?info=user_count needs filter_by_prefix=presence- and counts users once', async () => {
    assert.deepEqual(await get('/channels', { filter_by_prefix: 'presence-', info: 'user_count' }), {
      channels: { 'presence-room': { user_count: 2 }, 'presence-other': { user_count: 1 } },
    });
    assert.deepEqual(await get('/channels', { filter_by_prefix: 'presence-', info: 'user_count,subscription_count' }), {
      channels: {
        'presence-room': { user_count: 2, subscription_count: 3 },
        'presence-other': { user_count: 1, subscription_count: 1 },
      },
    });
    assertBadRequest(await refused(pusher.get({ path: '/channels', params: { info: 'user_count' } }), 'no prefix'), 'user_count without prefix');
    assertBadRequest(await refused(pusher.get({ path: '/channels', params: { filter_by_prefix: 'private-', info: 'user_count' } }), 'private prefix'), 'user_count with private- prefix');
  });

  test('GET /channels/<name>: occupied, subscription_count, user_count (presence only)', async () => {
    assert.deepEqual(await get('/channels/news'), { occupied: true });
    assert.deepEqual(await get('/channels/news', { info: 'subscription_count' }), { occupied: true, subscription_count: 2 });
    assert.deepEqual(await get('/channels/presence-room', { info: 'subscription_count,user_count' }),
      { occupied: true, subscription_count: 3, user_count: 2 });
    assert.deepEqual(await get('/channels/presence-other', { info: 'user_count' }), { occupied: true, user_count: 1 });
    assert.deepEqual(await get('/channels/unused-channel', { info: 'subscription_count' }), { occupied: false, subscription_count: 0 });
    assert.deepEqual(await get('/channels/presence-unused', { info: 'user_count' }), { occupied: false, user_count: 0 });
    assertBadRequest(await refused(pusher.get({ path: '/channels/news', params: { info: 'user_count' } }), 'user_count on news'), 'user_count on a public channel');
    assertBadRequest(await refused(pusher.get({ path: '/channels/private-user-q3', params: { info: 'user_count' } }), 'user_count on private'), 'user_count on a private channel');
    assertBadRequest(await refused(pusher.get({ path: '/channels/bad*name' }), 'bad name'), 'an invalid channel name');
    assertBadRequest(await refused(pusher.get({ path: `/channels/${'c'.repeat(165)}` }), 'long name'), 'a 165-character channel name');
  });

  test('GET /channels/presence-x/users lists each user once; other channel kinds -> 400', async () => {
    const { users } = await get('/channels/presence-room/users');
    assert.deepEqual([...users].sort((a, b) => a.id.localeCompare(b.id)), [{ id: 'q1' }, { id: 'q2' }]);
    assert.deepEqual(await get('/channels/presence-other/users'), { users: [{ id: 'q3' }] });
    assert.deepEqual(await get('/channels/presence-unused/users'), { users: [] });
    assertBadRequest(await refused(pusher.get({ path: '/channels/news/users' }), 'public'), 'users of a public channel');
    assertBadRequest(await refused(pusher.get({ path: '/channels/private-user-q3/users' }), 'private'), 'users of a private channel');
  });

  test('the answers follow unsubscribes and disconnects', async () => {
    await unsubscribe(s.u3, 'presence-other');
    assert.deepEqual(await get('/channels/presence-other', { info: 'user_count,subscription_count' }),
      { occupied: false, user_count: 0, subscription_count: 0 });
    assert.deepEqual(Object.keys((await get('/channels', { filter_by_prefix: 'presence-' })).channels), ['presence-room']);

    const roomInfo = () => get('/channels/presence-room', { info: 'user_count,subscription_count' });
    s.u1b.close();
    let info = await pollUntil(roomInfo, (v) => v.subscription_count === 2);
    assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 2 }, 'q1 still has a connection on the channel');

    s.u1a.close();
    info = await pollUntil(roomInfo, (v) => v.subscription_count === 1);
    assert.deepEqual(info, { occupied: true, user_count: 1, subscription_count: 1 }, 'q1 left with its last connection');
    assert.deepEqual(await get('/channels/presence-room/users'), { users: [{ id: 'q2' }] });
    assert.deepEqual(await get('/channels', { info: 'subscription_count' }), {
      channels: { 'presence-room': { subscription_count: 1 }, news: { subscription_count: 1 }, 'private-user-q3': { subscription_count: 1 }, 'private-group-g': { subscription_count: 1 } },
    });
  });
});

describe('HTTP API: MAX_PAYLOAD_BYTES is configurable', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv({ MAX_PAYLOAD_BYTES: '100' })); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('data of 100 bytes passes, 101 -> 413; the body limit follows (10*100+256KiB)', async () => {
    const pusher = sdk(srv);
    const { socket } = await join(srv.url, clients, 'small');
    await subscribeOk(socket, 'small-ch');
    const got = record(socket, 'e');
    await ok(pusher.trigger('small-ch', 'e', 'a'.repeat(100)), '100 bytes');
    assert.deepEqual(await first(got, '100-byte event'), { channel: 'small-ch', data: 'a'.repeat(100) });
    assertApiError(await refused(pusher.trigger('small-ch', 'e', 'a'.repeat(101)), '101 bytes'), 413, undefined, '101 bytes');
    const limit = 10 * 100 + 256 * 1024;
    const res = await signedRequest(srv, { path: '/events', body: JSON.stringify({ name: 'e', channel: 'small-ch', data: 'a', pad: 'p'.repeat(limit) }) });
    assertApiError(res, 413, undefined, 'body over 10*100+256KiB');
    await flush(socket);
    assert.equal(got.length, 1);
  });
});
