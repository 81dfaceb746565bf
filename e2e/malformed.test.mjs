// Malformed traffic (PRODUCT §9, issue 13): broken Engine.IO and socket.io packets over raw
// websockets and raw long-polling, against the real binary. Each case asserts what the
// sender gets (a typed jetsocket:error {code, message}, socket.io's namespace ERROR, an
// Engine.IO answer, a 4xx, or a clean close, as docs/clients.md "Connecting" documents), and is
// followed by a healthy client that connects, subscribes and receives a triggered event.
// badinput.test.mjs covers the coarser cases (floods, 2 MB frames, unknown events from
// socket.io-client); this file pins the exact answer to each kind of breakage.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { mint } from './helpers/jwt.mjs';
import {
  Clients, RawEio, connect, request, socketPath, sleep, wsHandshake, waitFor,
} from './helpers/clients.mjs';
import { subscribeOk, userClaims, waitUntil } from './helpers/channels.mjs';
import { appEnv, sdk, ok } from './helpers/pusher.mjs';
import { RawPolling, encodePayload } from './helpers/rawpolling.mjs';
import {
  RawPolling4, frozenV3Polling, frozenV3Websocket, frozenV4Polling, frozenV4Websocket, upgradeAndFreeze,
} from './helpers/frozen.mjs';

/** jsonRefusal asserts an HTTP refusal with our JSON error body. */
function jsonRefusal(res, status, what, code) {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text}`);
  assert.match(res.headers?.['content-type'] ?? '', /^application\/json/, `${what}: content type`);
  assert.equal(typeof res.json?.error, 'string', `${what}: ${res.text}`);
  assert.ok(res.json.message?.length > 0, `${what}: ${res.text}`);
  if (code) assert.equal(res.json.error, code, `${what}: ${res.text}`);
}

const errorFrame = (code) => (f) => f.startsWith('42["jetsocket:error",') && JSON.parse(f.slice(2))[1].code === code;
const ackFrame = (id) => (f) => f.startsWith(`43${id}[`);

describe('malformed traffic', () => {
  let srv;
  let api;
  let n = 0;
  const clients = new Clients();

  before(async () => {
    srv = await startServer(appEnv());
    api = sdk(srv);
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  /**
   * healthy proves the server still serves everyone else: a new socket.io-client connects,
   * subscribes, and receives an event triggered through the HTTP API.
   */
  async function healthy(what) {
    const channel = `healthy-${++n}`;
    const { socket } = await connect(srv.url, mint({ sub: `healthy-${n}` }), { clients, transports: ['websocket'] })
      .catch((err) => assert.fail(`healthy client could not connect after ${what}: ${err.message}`));
    await subscribeOk(socket, channel);
    const got = waitFor(socket, 'after-malformed', 5000);
    await ok(() => api.trigger(channel, 'after-malformed', { what }), `trigger after ${what}`);
    assert.deepEqual(await got.catch((err) => assert.fail(`healthy client after ${what}: ${err.message}`)),
      { channel, data: { what } });
    socket.close();
  }

  /** raw opens a raw Engine.IO websocket and waits for the socket.io CONNECT. */
  async function raw(sub = 'raw') {
    const r = clients.add(await RawEio.open(srv.url, mint({ sub })));
    r.sid = JSON.parse((await r.next((f) => f.startsWith('0{'), 5000, 'engine.io open')).slice(1)).sid;
    await r.next((f) => f === '40', 5000, 'socket.io connect');
    await r.next((f) => f.startsWith('42["jetsocket:connection_established"'), 5000, 'connection_established');
    return r;
  }

  let pingID = 100;
  /** usable asserts r still answers a socket.io ping with an ack; returns frames seen before it. */
  async function usable(r, what) {
    const id = ++pingID;
    r.send(`42${id}["jetsocket:ping"]`);
    await r.next(ackFrame(id), 5000, `ping ack after ${what}`);
    return r.frames.splice(0);
  }

  describe('over a raw websocket', () => {
    // [what, frames sent, expected: {error: code} | {frame: exact} | 'ignored']
    const cases = [
      // Engine.IO layer (go-socket.io's session): unknown and out-of-place types are skipped.
      ['unknown Engine.IO type 7', ['7'], 'ignored'],
      ['unknown Engine.IO type with junk', ['9xyz'], 'ignored'],
      ['Engine.IO NOOP', ['6'], 'ignored'],
      ['Engine.IO OPEN from a client', ['0'], 'ignored'],
      ['Engine.IO PONG unasked', ['3'], 'ignored'],
      ['Engine.IO UPGRADE on a websocket session', ['5'], 'ignored'],
      ['Engine.IO ping with a payload is echoed', ['2hello'], { frame: '3hello' }],
      // socket.io layer (ours): a typed jetsocket:error, the connection stays.
      ['socket.io packet type 7', ['47["x"]'], { error: 'bad_packet' }],
      ['socket.io packet type that is not a digit', ['4x["x"]'], { error: 'bad_packet' }],
      ['unterminated JSON', ['42["jetsocket:ping"'], { error: 'bad_packet' }],
      ['unterminated deep nesting (7,000 "[")', ['42[' + '['.repeat(7000)], { error: 'bad_packet' }],
      ['100,000 "[" (over the frame limit)', ['42' + '['.repeat(100_000)], { error: 'frame_too_large' }],
      ['ack id 99999999999999999999', ['4299999999999999999999["jetsocket:ping"]'], { error: 'bad_packet' }],
      ['ack id 2^53 (not exact in JavaScript)', ['429007199254740992["jetsocket:ping"]'], { error: 'bad_packet' }],
      ['largest exact ack id is answered', ['429007199254740991["jetsocket:ping"]'], { frame: /^439007199254740991\[\{"pong":true/ }],
      ['payload that is an object', ['42{"event":"jetsocket:ping"}'], { error: 'bad_packet' }],
      ['payload that is a string', ['42"jetsocket:ping"'], { error: 'bad_packet' }],
      ['payload that is a number', ['42-5'], { error: 'bad_packet' }],
      ['event packet with nothing after the type', ['42'], { error: 'bad_packet' }],
      ['empty event array', ['42[]'], { error: 'bad_packet' }],
      ['event name that is a number', ['42[5,{}]'], { error: 'bad_packet' }],
      ['event name that is an object', ['42[{"name":"jetsocket:ping"}]'], { error: 'bad_packet' }],
      ['event name that is null', ['42[null,{"channel":"x"}]'], { error: 'bad_packet' }],
      ['event name that is an array', ['42[["jetsocket:subscribe"],{"channel":"x"}]'], { error: 'bad_packet' }],
      ['socket.io BINARY_EVENT (5)', ['451-["jetsocket:ping",{"_placeholder":true,"num":0}]'], { error: 'binary_not_supported' }],
      ['socket.io BINARY_ACK (6)', ['461-1[{"_placeholder":true,"num":0}]'], { error: 'binary_not_supported' }],
      ['binary attachment count that is not a number', ['45abc-["x"]'], { error: 'bad_packet' }],
      ['binary attachment count with no dash', ['451["x"]'], { error: 'bad_packet' }],
      ['a stray ACK is ignored', ['431["x"]'], 'ignored'],
      ['a client ERROR packet is ignored', ['44"oops"'], 'ignored'],
      ['CONNECT to the root namespace again is ignored', ['40'], 'ignored'],
      // Other namespaces: socket.io's own ERROR packet for that namespace.
      ['CONNECT to /admin', ['40/admin,'], { frame: '44/admin,"Invalid namespace"' }],
      ['event on /other', ['42/other,["jetsocket:ping"]'], { frame: '44/other,"Invalid namespace"' }],
      ['event with an ack on /admin', ['42/admin,7["jetsocket:ping"]'], { frame: '44/admin,"Invalid namespace"' }],
      ['DISCONNECT from /other does not close the root', ['41/other,'], 'ignored'],
    ];
    for (const [what, frames, expected] of cases) {
      test(`${what}: ${typeof expected === 'string' ? expected : JSON.stringify(expected, (_, v) => (v instanceof RegExp ? String(v) : v))}`, async () => {
        const r = await raw();
        for (const f of frames) r.send(f);
        if (expected === 'ignored') {
          const seen = await usable(r, what);
          assert.deepEqual(seen, [], `${what} got an answer: ${JSON.stringify(seen)}`);
        } else if (expected.error) {
          const f = await r.next(errorFrame(expected.error), 5000, `jetsocket:error ${expected.error}`);
          const payload = JSON.parse(f.slice(2))[1];
          assert.equal(typeof payload.message, 'string');
          assert.ok(payload.message.length > 0);
          await usable(r, what);
        } else {
          const match = expected.frame instanceof RegExp ? (f) => expected.frame.test(f) : (f) => f === expected.frame;
          await r.next(match, 5000, `frame ${expected.frame}`);
          await usable(r, what);
        }
        assert.equal(r.isClosed, false, `${what} closed the connection`);
        r.close();
        await healthy(what);
      });
    }

    test('a binary websocket frame: binary_not_supported, connection stays', async () => {
      const r = await raw();
      r.ws.send(Buffer.from([4, 0xde, 0xad, 0xbe, 0xef]), { binary: true });
      await r.next(errorFrame('binary_not_supported'), 5000, 'binary_not_supported');
      await usable(r, 'binary frame');
      r.close();
      await healthy('binary frame');
    });

    test('a BINARY_EVENT followed by its binary attachment: refused, connection stays', async () => {
      const r = await raw();
      r.send('451-["jetsocket:ping",{"_placeholder":true,"num":0}]');
      r.ws.send(Buffer.from([4, 1, 2, 3]), { binary: true });
      await r.next(errorFrame('binary_not_supported'), 5000, 'first binary_not_supported');
      await r.next(errorFrame('binary_not_supported'), 5000, 'second binary_not_supported');
      await usable(r, 'binary attachment');
      r.close();
      await healthy('binary attachment');
    });

    test('a 100 KB frame: frame_too_large, packet dropped, connection stays', async () => {
      const r = await raw();
      r.send(`42["jetsocket:ping",${JSON.stringify('x'.repeat(100 << 10))}]`);
      const f = await r.next(errorFrame('frame_too_large'), 5000, 'frame_too_large');
      assert.match(JSON.parse(f.slice(2))[1].message, /packet dropped/);
      await usable(r, '100 KB frame');
      r.close();
      await healthy('100 KB frame');
    });

    test('a 3 MB frame: frame_too_large, then the connection is closed', async () => {
      const r = await raw();
      r.send(`42["x",${JSON.stringify('x'.repeat(3 << 20))}]`);
      await r.next(errorFrame('frame_too_large'), 10_000, 'frame_too_large');
      await Promise.race([r.closed, sleep(10_000).then(() => assert.fail('3 MB frame: connection not closed'))]);
      await healthy('3 MB frame');
    });

    for (const [what, closing] of [['Engine.IO CLOSE', '1'], ['socket.io DISCONNECT', '41']]) {
      test(`packets after ${what} are not handled; the session is gone`, async () => {
        const r = await raw();
        r.send(closing);
        r.send('421["jetsocket:ping"]');
        r.send('42["jetsocket:subscribe",{"channel":"after-close"}]');
        await Promise.race([r.closed, sleep(5000).then(() => assert.fail(`${what}: connection not closed`))]);
        assert.equal(r.frames.find(ackFrame(1)), undefined, `a packet after ${what} was answered`);
        const res = await request(socketPath(srv.url, { extra: { sid: r.sid } }));
        assert.equal(res.status, 400, `sid after ${what}: ${res.status} ${res.text}`);
        await healthy(`packets after ${what}`);
      });
    }
  });

  describe('over raw long-polling', () => {
    /** poller opens a polling session and reads up to connection_established. */
    async function poller(sub = 'poller') {
      const p = await RawPolling.open(srv.url, mint({ sub }));
      await p.getUntil((pk) => pk.startsWith('42["jetsocket:connection_established"'));
      return p;
    }

    /**
     * gone asserts the session ends: a poll answers 400 "invalid sid" within a few polls
     * (one racing the close may still get its last packets, or the library's 500).
     */
    async function gone(p, what) {
      let res;
      for (let i = 0; i < 5; i++) {
        res = await p.get({ timeoutMs: 10_000 });
        if (res.status === 400) return jsonRefusal(res, 400, what, 'invalid_sid');
      }
      assert.fail(`${what}: session still answers (${res.status} ${res.text.slice(0, 200)})`);
    }

    // Bodies the Engine.IO payload decoder refuses: 400, and the session is closed.
    const refused = [
      ['junk with no length', 'zzzz'],
      ['packet with no length prefix', '42["jetsocket:ping"]'],
      ['length prefix shorter than the packet', '2:42["x"]'],
      ['negative length', '-5:42'],
      ['zero length', '0:'],
      ['empty body', ''],
      ['"b4" with bad base64', '10:b4!!!!@@@@'],
    ];
    for (const [what, body] of refused) {
      test(`POST ${what} (${JSON.stringify(body)}): 400, sender's session closed`, async () => {
        const p = await poller();
        const res = await p.post(body);
        jsonRefusal(res, 400, what);
        await gone(p, what);
        await healthy(`POST ${what}`);
      });
    }

    test('POST whose length prefix is longer than the body: the packet is cut at the body\'s end (bad_packet)', async () => {
      // Engine.IO's decoder does not check lengths against the body: "999:42" is packet "2".
      const p = await poller();
      const res = await p.post('999:42');
      assert.equal(res.status, 200, res.text);
      await p.getUntil(errorFrame('bad_packet'));
      await healthy('length prefix longer than the body');
    });

    test('POST with a length prefix of 23 digits: no crash, the session stays usable or goes', async () => {
      const p = await poller();
      const res = await p.post('99999999999999999999999:42');
      assert.ok(res.status === 200 || res.status === 400, `${res.status} ${res.text}`);
      await healthy('23-digit length');
    });

    for (const [what, contentType] of [
      ['application/json', 'application/json'],
      ['text/plain without a charset', 'text/plain'],
      ['a content type that does not parse', ';;;=='],
    ]) {
      test(`POST with content type ${what}: 400, session stays`, async () => {
        const p = await poller();
        const res = await p.post(encodePayload('42["jetsocket:ping"]'), { contentType });
        jsonRefusal(res, 400, what);
        const ok2 = await p.post(encodePayload('421["jetsocket:ping"]'));
        assert.equal(ok2.status, 200, ok2.text);
        await p.getUntil((pk) => pk.startsWith('431['));
        await healthy(`content type ${what}`);
      });
    }

    test('binary POST (octet-stream) with a bad frame header: 400', async () => {
      const p = await poller();
      const res = await p.post(Buffer.from([7, 7, 7, 7]), { contentType: 'application/octet-stream' });
      jsonRefusal(res, 400, 'binary POST');
      await healthy('binary POST');
    });

    test('a valid "b4" base64 message: binary_not_supported on the next poll', async () => {
      const p = await poller();
      const res = await p.post(encodePayload(`b4${Buffer.from('42["jetsocket:ping"]').toString('base64')}`));
      assert.equal(res.status, 200, res.text);
      const f = await p.getUntil(errorFrame('binary_not_supported').bind(null));
      assert.ok(f);
      await healthy('b4 message');
    });

    test('socket.io garbage in a valid payload: typed errors on the next poll, session stays', async () => {
      const p = await poller();
      const res = await p.post(encodePayload('42["x",', '42[5]', '42/admin,["x"]', '451-["x",{}]', '421["jetsocket:ping"]'));
      assert.equal(res.status, 200, res.text);
      await p.getUntil((pk) => pk.startsWith('431['));
      for (const code of ['bad_packet', 'binary_not_supported']) {
        assert.ok(p.received.some(errorFrame(code)), `no ${code} in ${JSON.stringify(p.received)}`);
      }
      assert.ok(p.received.includes('44/admin,"Invalid namespace"'), JSON.stringify(p.received));
      await healthy('socket.io garbage over polling');
    });

    test('unknown Engine.IO types in a payload are skipped', async () => {
      const p = await poller();
      const res = await p.post(encodePayload('9', '7junk', '6', '421["jetsocket:ping"]'));
      assert.equal(res.status, 200, res.text);
      await p.getUntil((pk) => pk.startsWith('431['));
      await healthy('unknown Engine.IO types over polling');
    });

    test('a ping with a payload is echoed to the pending poll', async () => {
      const p = await poller();
      const pending = p.get();
      await sleep(100); // let the GET reach the server first; the answer is awaited, not timed
      const res = await p.post(encodePayload('2hello'));
      assert.equal(res.status, 200, res.text);
      const got = await pending;
      assert.equal(got.status, 200, got.text);
      if (!got.packets.includes('3hello')) await p.getUntil((pk) => pk === '3hello');
      await healthy('polling ping with payload');
    });

    test('a POST over the body limit with a Content-Length: 413 JSON, session stays', async () => {
      const p = await poller();
      const body = encodePayload(`42["x",${JSON.stringify('y'.repeat(200 << 10))}]`);
      const res = await request(p.url(), {
        method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8', 'content-length': Buffer.byteLength(body) },
      });
      assert.equal(res.status, 413, `${res.status} ${res.text.slice(0, 200)}`);
      assert.equal(res.json?.error, 'too_large', res.text);
      assert.equal((await p.post(encodePayload('421["jetsocket:ping"]'))).status, 200);
      await p.getUntil((pk) => pk.startsWith('431['));
      await healthy('oversized POST');
    });

    test('a chunked POST over the body limit: 400 when the limit is crossed, sender\'s session closed', async () => {
      const p = await poller();
      const res = await p.post(encodePayload(`42["x",${JSON.stringify('y'.repeat(200 << 10))}]`));
      jsonRefusal(res, 400, 'chunked oversized POST');
      await gone(p, 'chunked oversized POST');
      await healthy('chunked oversized POST');
    });

    test('packets after CLOSE: the session is gone, later POSTs get 400', async () => {
      const p = await poller();
      assert.equal((await p.close()).status, 200);
      const after = await p.post(encodePayload('421["jetsocket:ping"]'));
      jsonRefusal(after, 400, 'POST after close', 'invalid_sid');
      await gone(p, 'after CLOSE');
      await healthy('packets after CLOSE');
    });

    test('a second handshake carrying the sid does not open a second session', async () => {
      const p = await poller();
      // It is an ordinary poll of that session: it brings the session's next packet.
      const second = request(socketPath(srv.url, { token: mint({ sub: 'poller' }), extra: { sid: p.sid, b64: '1' } }));
      await sleep(100); // let the poll reach the server first; its answer is awaited, not timed
      assert.equal((await p.post(encodePayload('421["jetsocket:ping"]'))).status, 200);
      const res = await second;
      assert.equal(res.status, 200, res.text);
      assert.match(res.text, /431\[/, 'the ack');
      assert.doesNotMatch(res.text, /"sid":/, 'a new OPEN packet for an existing sid');
      await healthy('second handshake');
    });

    test('polling for a sid that never existed: 400 invalid_sid', async () => {
      const res = await request(socketPath(srv.url, { extra: { sid: 'AAAAAAAAAAAAAAAAAAAAAA', b64: '1' } }));
      jsonRefusal(res, 400, 'unknown sid', 'invalid_sid');
    });
  });

  describe('sids across transports and connections', () => {
    test('polling requests for a websocket session: 400 JSON at once, the session is unharmed', async () => {
      const r = await raw('ws-owner');
      const { sid } = r;
      for (const method of ['GET', 'POST']) {
        const res = await request(socketPath(srv.url, { extra: { sid, b64: '1' } }), {
          method, headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: method === 'POST' ? encodePayload('2') : undefined,
        });
        jsonRefusal(res, 400, method, 'transport_mismatch');
      }
      await usable(r, 'polling on a websocket sid');
      r.close();
      await healthy('polling on a websocket sid');
    });

    test('a second websocket upgrade of one polling session: 400 JSON; the first completes', async () => {
      const p = await poller2();
      const wsURL = socketPath(srv.url, { transport: 'websocket', extra: { sid: p.sid } });
      const first = await wsHandshake(wsURL);
      assert.ok(first.ws, `first upgrade refused: ${first.status} ${first.text}`);
      clients.add(first.ws);
      const second = await wsHandshake(wsURL);
      second.ws?.terminate();
      jsonRefusal(second, 400, 'second upgrade', 'upgrade_in_progress');
      first.ws.send('2probe');
      const r = clients.add(new RawEio(first.ws, first.early));
      first.stopKeeping();
      await r.next((f) => f === '3probe', 5000, 'probe answer');
      r.send('5');
      await usable(r, 'upgrade');
      r.close();
      await healthy('second upgrade');
    });

    test('a websocket for another live websocket session\'s sid: 400 JSON; that session is unharmed', async () => {
      const owner = await raw('owner');
      const { sid } = owner;
      const intruder = await wsHandshake(socketPath(srv.url, { transport: 'websocket', extra: { sid } }));
      intruder.ws?.terminate();
      assert.equal(intruder.ws, undefined, 'websocket opened on another session\'s sid');
      jsonRefusal(intruder, 400, 'websocket on a websocket sid', 'transport_mismatch');
      await usable(owner, 'intruder');
      owner.close();
      await healthy('websocket on another sid');
    });

    test('the sid of a closed connection: 400', async () => {
      const r = await raw('closed-owner');
      const { sid } = r;
      r.send('1');
      await r.closed;
      for (const transport of ['polling', 'websocket']) {
        const res = transport === 'polling'
          ? await request(socketPath(srv.url, { extra: { sid } }))
          : await wsHandshake(socketPath(srv.url, { transport, extra: { sid } }));
        res.ws?.terminate();
        assert.equal(res.ws, undefined, `${transport} on a closed sid was upgraded`);
        jsonRefusal(res, 400, `${transport} on a closed sid`, 'invalid_sid');
      }
    });

    async function poller2() {
      const p = await RawPolling.open(srv.url, mint({ sub: 'upgrader' }));
      await p.getUntil((pk) => pk.startsWith('42["jetsocket:connection_established"'));
      return p;
    }
  });

  test('the server never panicked or logged an internal error', () => {
    assert.doesNotMatch(srv.output(), /panic|goroutine \d+ \[|level=ERROR/, 'panic or error in the server output');
  });
});

// One client never delays anyone else (PRODUCT §9): a consumer that stops reading, of each
// kind (v3 and v4, polling and websocket, and a polling session that lets a backlog build
// up, then upgrades to a websocket it never reads, on both engines), shares a channel with
// healthy subscribers. Every trigger returns, and every healthy subscriber has the message,
// within 2 s, until each frozen one has been cut off as a slow consumer. Messages are ~60 KB
// so the frozen websockets fill the kernel's buffers (a few MB) and then their queues.
describe('one frozen consumer of each kind', () => {
  const CHANNEL = 'stall';
  const PAD = 'x'.repeat(60_000);
  const BACKLOG = 100; // queued for the upgraders before they upgrade (their bound is 256)
  const MAX_MESSAGES = 1500;
  let srv;
  let api;
  const clients = new Clients();

  before(async () => {
    // Pings far apart: a frozen session must be cut off as a slow consumer, not by a ping
    // timeout.
    srv = await startServer(appEnv({ MAX_PAYLOAD_BYTES: '65536', PING_INTERVAL: '5m' }));
    api = sdk(srv);
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  const cutOff = (sub) => new RegExp(`slow consumer disconnected[^\\n]*${sub}`).test(srv.output());

  test('each frozen consumer is cut off; the trigger and every healthy subscriber stay on time', { timeout: 240_000 }, async () => {
    const healthy = [];
    for (const [sub, opts] of [
      ['healthy-v3-websocket', { major: 2, transports: ['websocket'] }],
      ['healthy-v3-default', { major: 2 }],
      ['healthy-v4-websocket', { major: 4, transports: ['websocket'] }],
      ['healthy-v4-default', { major: 4 }],
    ]) {
      const { socket } = await connect(srv.url, mint(userClaims(sub)), { clients, ...opts });
      await subscribeOk(socket, CHANNEL);
      const h = { sub, got: new Set(), gone: null };
      socket.on('tick', (p) => h.got.add(p.data.i));
      socket.on('disconnect', (r) => { h.gone = r; });
      healthy.push(h);
    }
    const token = (sub) => mint(userClaims(sub));
    const track = (f, sub) => { if (f.raw) clients.add(f.raw); return { ...f, sub }; };
    const frozen = [
      track(await frozenV3Polling(srv.url, token('frozen-v3-polling'), CHANNEL), 'frozen-v3-polling'),
      track(await frozenV3Websocket(srv.url, token('frozen-v3-websocket'), CHANNEL), 'frozen-v3-websocket'),
      track(await frozenV4Polling(srv.url, token('frozen-v4-polling'), CHANNEL), 'frozen-v4-polling'),
      track(await frozenV4Websocket(srv.url, token('frozen-v4-websocket'), CHANNEL), 'frozen-v4-websocket'),
    ];
    const upgraders = [
      track(await frozenV3Polling(srv.url, token('frozen-v3-upgrade'), CHANNEL), 'frozen-v3-upgrade'),
      track(await frozenV4Polling(srv.url, token('frozen-v4-upgrade'), CHANNEL), 'frozen-v4-upgrade'),
    ];

    let sent = 0;
    async function tick() {
      const i = sent++;
      const t0 = Date.now();
      await ok(() => api.trigger(CHANNEL, 'tick', { i, pad: PAD }), `trigger ${i}`);
      const took = Date.now() - t0;
      assert.ok(took < 2000, `trigger ${i} took ${took} ms`);
      await waitUntil(() => healthy.every((h) => h.got.has(i)), 2000 - took,
        () => `message ${i} at ${healthy.filter((h) => !h.got.has(i)).map((h) => h.sub).join(', ')}`);
      for (const h of healthy) assert.equal(h.gone, null, `${h.sub} was disconnected (${h.gone})`);
    }

    for (let k = 0; k < BACKLOG; k++) await tick();
    for (const [k, u] of upgraders.entries()) {
      upgraders[k] = track(await upgradeAndFreeze(srv.url, u), u.sub);
    }
    const all = [...frozen, ...upgraders];
    while (sent < MAX_MESSAGES && !all.every((f) => cutOff(f.sub))) await tick();
    for (const f of all) assert.ok(cutOff(f.sub), `${f.kind} (${f.sub}) not cut off as a slow consumer after ${sent} messages`);
    console.log(`# all frozen consumers cut off after ${sent} messages`);
    // Everyone healthy still connected and receiving.
    await tick();
  });
});

// A v4 session counts against MAX_CONNECTIONS_PER_IP from its handshake, before it sends
// CONNECT (PRODUCT §9): sessions that never authenticate cannot pile up past the limit.
describe('sessions before CONNECT count per address', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv({ MAX_CONNECTIONS_PER_IP: '3' })); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('beyond 3 sessions of one address, polling and websocket handshakes get 429 too_many_connections', async () => {
    const v4 = (transport) => socketPath(srv.url, { transport, extra: { EIO: '4' } });
    const polls = [await RawPolling4.open(srv.url), await RawPolling4.open(srv.url)];
    const open = await wsHandshake(v4('websocket'));
    assert.ok(open.ws, `third session: ${open.status} ${open.text}`);
    clients.add(new RawEio(open.ws, open.early));
    for (let k = 0; k < 10; k++) {
      jsonRefusal(await request(v4('polling')), 429, `polling session ${4 + k}`, 'too_many_connections');
      const res = await wsHandshake(v4('websocket'));
      res.ws?.terminate();
      assert.equal(res.ws, undefined, `websocket session ${4 + k} was accepted`);
      jsonRefusal(res, 429, `websocket session ${4 + k}`, 'too_many_connections');
    }
    // A session that ends frees its place.
    await polls[0].post('1');
    const deadline = Date.now() + 5000;
    for (;;) {
      const res = await request(v4('polling'));
      if (res.status === 200) break;
      assert.ok(Date.now() < deadline, `a closed session's place was not freed: ${res.status} ${res.text}`);
      await sleep(20);
    }
  });
});
