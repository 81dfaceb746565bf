// What bad input gets (PRODUCT §9): garbage packets, unknown events, odd payloads and floods
// may cost the sender its connection, never the server or anyone else's connection.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { mint } from './helpers/jwt.mjs';
import {
  connect, ping, request, socketPath, sleep, withTimeout, Clients, RawEio,
} from './helpers/clients.mjs';

/** A socket.io error event frame, if the server chose to answer garbage with one. */
const ERROR_FRAME = /^42\["jetsocket:error",/;

describe('bad input over socket.io', () => {
  let srv;
  let bystander;
  let bystanderDisconnected = null;
  const clients = new Clients();

  before(async () => {
    srv = await startServer();
    ({ socket: bystander } = await connect(srv.url, mint({ sub: 'bystander' }), { clients }));
    // Let the default client finish its upgrade first; emits during the upgrade are covered
    // by reliability.test.mjs, not here.
    await sleep(500);
    bystander.on('disconnect', (reason) => { bystanderDisconnected = reason; });
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  /** healthy proves the server still serves: the bystander pings, a new client connects. */
  async function healthy(what) {
    assert.equal(bystanderDisconnected, null, `bystander was disconnected after ${what}`);
    const bystanderAck = await ping(bystander).catch((err) => assert.fail(`bystander ping after ${what}: ${err.message}`));
    assert.equal(bystanderAck.pong, true, `bystander ping after ${what}`);
    const { socket } = await connect(srv.url, mint({ sub: 'newcomer' }), { clients, transports: ['websocket'] });
    const ack = await ping(socket).catch((err) => assert.fail(
      `new client (${socket.io.engine?.transport?.name}) ping after ${what}: ${err.message}`));
    assert.equal(ack.pong, true, `new client ping after ${what}`);
    socket.close();
    assert.equal((await request(`${srv.url}/healthz`)).status, 200);
  }

  test('raw Engine.IO v3 handshake: open packet, then socket.io CONNECT, ping answered', async () => {
    const raw = clients.add(await RawEio.open(srv.url, mint({ sub: 'raw' })));
    const open = await raw.next((f) => f.startsWith('0'), 5000, 'engine.io open');
    const info = JSON.parse(open.slice(1));
    assert.equal(typeof info.sid, 'string');
    await raw.next((f) => f === '40', 5000, 'socket.io connect');
    raw.send('2');
    assert.equal(await raw.next((f) => f[0] === '3', 5000, 'engine.io pong'), '3');
    raw.send('421["jetsocket:ping"]');
    const ack = await raw.next((f) => f.startsWith('431'), 5000, 'ping ack');
    assert.equal(JSON.parse(ack.slice(3))[0].pong, true);
  });

  const garbage = [
    ['truncated event', '42["x",'],
    ['unknown engine.io packet type', '9'],
    ['broken socket.io JSON', '4{'],
    ['pure junk', 'zz'],
    ['unknown socket.io packet type', '49["x"]'],
    ['event with a non-string name', '42[42,{"a":1}]'],
    ['event that is not an array', '42{"event":"x"}'],
    ['ack for an id never sent', '43999[{"x":1}]'],
    ['binary event header with no attachments', '451-["x",{"_placeholder":true,"num":0}]'],
    ['namespace that does not exist', '40/nope,'],
    ['empty frame', ''],
  ];
  for (const [what, frame] of garbage) {
    test(`${what} (${JSON.stringify(frame)}): sender may be dropped, server keeps serving`, async () => {
      const raw = clients.add(await RawEio.open(srv.url, mint({ sub: 'garbage' })));
      await raw.next((f) => f === '40', 5000, 'socket.io connect');
      raw.send(frame);
      // Give the server a moment to react; the reaction itself is free (error event or close).
      await Promise.race([raw.closed, raw.next((f) => ERROR_FRAME.test(f), 1000).catch(() => {})]);
      const errFrame = raw.frames.find((f) => ERROR_FRAME.test(f));
      if (errFrame) {
        const [, payload] = JSON.parse(errFrame.slice(2));
        assert.ok(payload.code !== undefined && typeof payload.message === 'string', `typed error: ${errFrame}`);
      }
      raw.close();
      await healthy(what);
    });
  }

  test('a 2 MB frame: sender may be dropped, server keeps serving', async () => {
    const raw = clients.add(await RawEio.open(srv.url, mint({ sub: 'big' })));
    await raw.next((f) => f === '40', 5000, 'socket.io connect');
    raw.send(`42["jetsocket:ping",${JSON.stringify('a'.repeat(2 * 1024 * 1024))}]`);
    await Promise.race([raw.closed, sleep(1000)]);
    raw.close();
    await healthy('2 MB frame');
  });

  /**
   * pollingSession opens an engine.io polling session the way socket.io-client does (text
   * payloads via b64=1), drains the socket.io CONNECT and returns the sid.
   */
  async function pollingSession(sub) {
    const open = await request(socketPath(srv.url, { token: mint({ sub }), extra: { b64: '1' } }));
    assert.equal(open.status, 200, open.text);
    const sid = /"sid":"([^"]+)"/.exec(open.text)?.[1];
    assert.ok(sid, `sid in ${open.text}`);
    const first = await request(socketPath(srv.url, { extra: { sid, b64: '1' } }));
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, /40/, 'socket.io CONNECT on the first poll');
    return sid;
  }

  /** post sends an engine.io payload; a dropped connection counts as an answer, a hang does not. */
  const post = (sid, body) => request(socketPath(srv.url, { extra: { sid, b64: '1' } }), {
    method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body,
  }).catch((err) => {
    if (/timed out/.test(err.message)) throw err;
    return { status: 0, text: `connection dropped: ${err.message}` };
  });

  test('a well-formed polling POST is accepted (control for the two below)', async () => {
    const sid = await pollingSession('poller0');
    const packet = '42["jetsocket:ping"]';
    const res = await post(sid, `${packet.length}:${packet}`);
    assert.equal(res.status, 200, res.text);
  });

  test('a 2 MB polling POST: refused or dropped promptly, server keeps serving', async () => {
    const sid = await pollingSession('poller1');
    const packet = `42["x",${JSON.stringify('b'.repeat(2 * 1024 * 1024))}]`;
    const res = await post(sid, `${packet.length}:${packet}`);
    assert.ok(res.status < 500, `2 MB POST answered ${res.status} ${res.text.slice(0, 200)}`);
    await healthy('2 MB polling POST');
  });

  test('a polling POST whose length prefix lies is answered promptly, server keeps serving', async () => {
    const sid = await pollingSession('poller2');
    const res = await post(sid, '999:zz');
    assert.ok(res.status < 500, `broken payload -> ${res.status} ${res.text}`);
    await healthy('broken polling payload');
  });

  test('polling with an unknown sid gets a 4xx', async () => {
    const res = await request(socketPath(srv.url, { extra: { sid: 'no-such-session' } }));
    assert.ok(res.status >= 400 && res.status < 500, `unknown sid -> ${res.status} ${res.text}`);
  });

  test('a wrong EIO version with a valid token is refused without a crash', async () => {
    // EIO 3 and 4 are both served (socket.io-client 2.x and 3.x/4.x); 5 is no version at all.
    const res = await request(socketPath(srv.url, { token: mint(), extra: { EIO: '5' } }));
    assert.equal(res.status, 400, `EIO=5 -> ${res.status} ${res.text}`);
    assert.equal(JSON.parse(res.text).error, 'unsupported_protocol');
    const res2 = await request(socketPath(srv.url, { token: mint(), extra: { transport: 'carrier-pigeon' } }));
    assert.ok(res2.status >= 400 && res2.status < 500, `unknown transport -> ${res2.status} ${res2.text}`);
    await healthy('wrong EIO / transport');
  });

  test('a flood of 2,000 unknown events from one raw client', async () => {
    const raw = clients.add(await RawEio.open(srv.url, mint({ sub: 'flood' })));
    await raw.next((f) => f === '40', 5000, 'socket.io connect');
    for (let i = 0; i < 2000 && !raw.isClosed; i++) raw.send(`42["flood-${i % 7}",{"i":${i}}]`);
    await Promise.race([raw.closed, sleep(1000)]);
    raw.close();
    await healthy('flood');
  });

  test('unknown events and odd payloads from socket.io-client: the same client keeps working', async () => {
    const { socket } = await connect(srv.url, mint({ sub: 'odd' }), { clients, transports: ['websocket'] });
    let dropped = null;
    socket.on('disconnect', (r) => { dropped = r; });
    socket.emit('no-such-event', { a: 1 });
    socket.emit('no-such-event-with-ack', { a: 1 }, () => {});
    socket.emit('jetsocket:ping', 'a string payload');
    socket.emit('jetsocket:ping', null, 42, [1, 2, 3]);
    socket.emit('jetsocket:subscribe', 'not-an-object');
    socket.emit('jetsocket:subscribe', 12345);
    socket.emit('jetsocket:subscribe', null);
    socket.emit('jetsocket:subscribe', { channel: { nested: true } });
    socket.emit('jetsocket:unsubscribe', []);
    socket.emit('jetsocket:refresh', { token: 123 });
    socket.emit('client-typing', 'no channel');
    socket.emit('jetsocket:ping', Buffer.from([1, 2, 3]));
    const ack = await ping(socket);
    assert.equal(ack.pong, true);
    assert.equal(dropped, null, `client was disconnected: ${dropped}`);
    await healthy('unknown events');
  });

  test('a socket.io-client subscribe with a garbage payload gets a typed answer when it asks for one', async () => {
    const { socket } = await connect(srv.url, mint({ sub: 'odd2' }), { clients, transports: ['websocket'] });
    const ack = await withTimeout(
      new Promise((resolve) => socket.emit('jetsocket:subscribe', 'not-an-object', resolve)), 5000, 'subscribe ack',
    );
    assert.equal(ack.ok, false, JSON.stringify(ack));
    assert.equal(ack.status, 400, JSON.stringify(ack));
    assert.equal(typeof ack.error, 'string');
  });

  test('the server never panicked', () => {
    assert.doesNotMatch(srv.output(), /panic|goroutine \d+ \[/, 'panic in the server output');
  });
});
