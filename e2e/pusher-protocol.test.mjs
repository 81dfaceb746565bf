// The Pusher endpoint's protocol edges (PRODUCT §15, §9): every close code pusher-js acts
// on (4001, 4007, 4009, 4100, 4200, 4201, 4301), malformed input answered with
// pusher:error while the server goes on serving, and limits and metrics that count the
// Pusher and socket.io endpoints together.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients, connect, request, expectRefused, sleep, wsHandshake } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import { userClaims } from './helpers/channels.mjs';
import { APP, appEnv, sdk } from './helpers/pusher.mjs';
import { pusherJs, connected, RawPusher } from './helpers/pusherjs.mjs';

const errorOf = (p) => new Promise((resolve) => p.connection.bind('error', resolve));

describe('pusher close codes', () => {
  const clients = new Clients();
  after(() => clients.closeAll());

  test('4001: an unknown app key gets pusher:error 4001 and the close; pusher-js does not reconnect', async () => {
    const srv = await startServer(appEnv());
    try {
      const raw = clients.add(new RawPusher(srv, { key: 'no-such-key' }));
      const e = await raw.event('pusher:error');
      assert.equal(e.data.code, 4001);
      assert.equal((await raw.closed).code, 4001);

      const p = pusherJs(srv, { key: 'no-such-key', clients });
      const states = [];
      p.connection.bind('state_change', (s) => states.push(s.current));
      const disconnected = new Promise((resolve) => p.connection.bind('disconnected', resolve));
      const err = await errorOf(p);
      // Refused in the handshake: pusher-js wraps the PusherError.
      assert.equal(err.error.data.code, 4001);
      await disconnected;
      assert.deepEqual(states, ['disconnected'], 'no reconnect attempt');
    } finally { await srv.stop(); }
  });

  test('4007: a protocol version the server does not speak', async () => {
    const srv = await startServer(appEnv());
    try {
      const raw = clients.add(new RawPusher(srv, { query: 'protocol=3' }));
      assert.equal((await raw.event('pusher:error')).data.code, 4007);
      assert.equal((await raw.closed).code, 4007);
    } finally { await srv.stop(); }
  });

  test('4200: shutdown closes Pusher connections with 4200 so pusher-js reconnects', async () => {
    const srv = await startServer(appEnv());
    const raw = clients.add(new RawPusher(srv));
    await raw.established();
    const p = pusherJs(srv, { clients });
    await connected(p);
    const err = errorOf(p);
    const reconnecting = new Promise((resolve) => p.connection.bind('state_change', (s) => {
      if (s.previous === 'connected' && s.current !== 'disconnected') resolve(s.current);
    }));
    await srv.stop();
    assert.equal((await raw.closed).code, 4200);
    assert.equal((await err).data.code, 4200);
    assert.match(await reconnecting, /connecting|unavailable/);
    p.disconnect();
  });

  test('4201: a quiet connection is pinged, answered pings keep it, silence closes it', async () => {
    const srv = await startServer(appEnv({ PUSHER_ACTIVITY_TIMEOUT: '1s', PUSHER_PONG_TIMEOUT: '300ms' }));
    try {
      const live = clients.add(new RawPusher(srv));
      const silent = clients.add(new RawPusher(srv));
      assert.equal((await live.established()).activity_timeout, 1);
      await silent.established();
      live.ws.on('message', (m) => {
        if (JSON.parse(m.toString()).event === 'pusher:ping') live.send({ event: 'pusher:pong', data: {} });
      });
      await silent.event('pusher:ping');
      assert.equal((await silent.event('pusher:error')).data.code, 4201);
      assert.equal((await silent.closed).code, 4201);
      // The live one answered its pings throughout and is served.
      await live.event('pusher:ping');
      await live.event('pusher:ping');
      await live.roundTrip();
    } finally { await srv.stop(); }
  });

  test('4301: client events over CLIENT_EVENT_RATE close the connection with 4301', async () => {
    const srv = await startServer(appEnv({ CLIENT_EVENT_RATE: '3' }));
    try {
      const api = sdk(srv);
      const raw = clients.add(new RawPusher(srv));
      const { socket_id: sid } = await raw.established();
      raw.send({ event: 'pusher:subscribe', data: { channel: 'private-flood', ...api.authorizeChannel(sid, 'private-flood') } });
      await raw.event('pusher_internal:subscription_succeeded', 'private-flood');
      for (let i = 0; i < 20; i++) raw.send({ event: 'client-flood', channel: 'private-flood', data: { i } });
      assert.equal((await raw.event('pusher:error')).data.code, 4301);
      assert.equal((await raw.closed).code, 4301);
      const other = clients.add(new RawPusher(srv));
      await other.established();
    } finally { await srv.stop(); }
  });

  test('4009: with PUSHER_REQUIRE_SIGNIN subscribes wait for a sign-in, and no sign-in in time closes', async () => {
    const srv = await startServer(appEnv({ PUSHER_REQUIRE_SIGNIN: 'true', PUSHER_SIGNIN_TIMEOUT: '1s' }));
    try {
      const api = sdk(srv);
      const signed = clients.add(new RawPusher(srv));
      const { socket_id: sid } = await signed.established();
      signed.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
      const refused = await signed.event('pusher:subscription_error', 'news');
      assert.equal(refused.data.status, 401);
      signed.send({ event: 'pusher:signin', data: api.authenticateUser(sid, { id: 'req1' }) });
      assert.deepEqual(JSON.parse((await signed.event('pusher:signin_success')).data.user_data), { id: 'req1' });
      signed.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
      await signed.event('pusher_internal:subscription_succeeded', 'news');

      const anon = clients.add(new RawPusher(srv));
      await anon.established();
      assert.equal((await anon.event('pusher:error')).data.code, 4009);
      assert.equal((await anon.closed).code, 4009);
      await signed.roundTrip(); // past the timeout, the signed-in one stays
    } finally { await srv.stop(); }
  });
});

describe('pusher malformed input and limits', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv({ MAX_PAYLOAD_BYTES: '1024', MAX_CONNECTIONS_PER_IP: '4' })); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('bad JSON, no event, unknown events, bad data, binary frames: pusher:error 4300, the connection goes on', async () => {
    const bystander = clients.add(new RawPusher(srv));
    await bystander.established();
    const raw = clients.add(new RawPusher(srv));
    await raw.established();
    for (const bad of ['{not json', '[]', '{"data":{}}', '{"event":"pusher:nope","data":{}}', '{"event":"pusher:subscribe","data":"[1"}', '{"event":"pusher:subscribe","data":{}}']) {
      raw.send(bad);
      const e = await raw.event('pusher:error', undefined, 5000);
      assert.equal(e.data.code, 4300, bad);
      assert.equal(typeof e.data.message, 'string');
    }
    raw.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await raw.event('pusher:error')).data.code, 4300);
    raw.send({ event: 'pusher:subscribe', data: JSON.stringify({ channel: 'string-data' }) });
    await raw.event('pusher_internal:subscription_succeeded', 'string-data');
    raw.send({ event: 'pusher:subscribe', data: { channel: 'bad name!' } });
    const e = await raw.event('pusher:subscription_error', 'bad name!');
    assert.equal(e.data.status, 400);
    await raw.roundTrip();
    await bystander.roundTrip();
  });

  test('oversized frames: over the payload limit a pusher:error 4302, far over it the close 1009', async () => {
    const raw = clients.add(new RawPusher(srv));
    await raw.established();
    raw.send({ event: 'client-big', channel: 'private-x', data: 'x'.repeat(6000) });
    assert.equal((await raw.event('pusher:error')).data.code, 4302);
    await raw.roundTrip();
    raw.send({ event: 'client-big', channel: 'private-x', data: 'x'.repeat(40_000) });
    assert.equal((await raw.closed).code, 1009);
    const next = clients.add(new RawPusher(srv));
    await next.established();
    next.close();
  });

  test('a subscribe sent before connection_established was read is served in order', async () => {
    const raw = new RawPusher(srv);
    clients.add(raw);
    await raw.opened;
    raw.send({ event: 'pusher:subscribe', data: { channel: 'early' } });
    await raw.established();
    await raw.event('pusher_internal:subscription_succeeded', 'early');
    raw.close();
  });

  test('MAX_CONNECTIONS_PER_IP and jetsocket_connections count Pusher and socket.io connections together', async () => {
    const metric = async () => Number((await request(`${srv.url}/metrics`)).text.match(/^jetsocket_connections (\d+)/m)[1]);
    clients.closeAll();
    // The server sees the closes of the suite's earlier connections in its own time.
    for (let i = 0; (await metric()) !== 0; i++) {
      assert.ok(i < 250, 'earlier connections gone');
      await sleep(40);
    }
    const { socket } = await connect(srv.url, mint(userClaims('lim')), { transports: ['websocket'], clients });
    const raws = [];
    for (let i = 0; i < 3; i++) {
      raws.push(clients.add(new RawPusher(srv)));
      await raws[i].established();
    }
    assert.equal(await metric(), 4);
    const over = clients.add(new RawPusher(srv));
    assert.equal((await over.event('pusher:error')).data.code, 4100);
    assert.equal((await over.closed).code, 4100);
    const err = await expectRefused(srv.url, mint(userClaims('lim2')), { transports: ['websocket'] });
    assert.ok(err, 'socket.io refused too');
    raws[0].close();
    socket.close();
    // The server sees the two closes in its own time; then there is room again.
    for (let i = 0; (await metric()) !== 2; i++) {
      assert.ok(i < 250, 'two connections closed');
      await sleep(40);
    }
    const again = clients.add(new RawPusher(srv));
    await again.established();
  });
});

describe('pusher origins', () => {
  test('a browser origin not in ALLOWED_ORIGINS is refused 403 JSON before the upgrade; an allowed one connects', async () => {
    const srv = await startServer(appEnv({ ALLOWED_ORIGINS: 'https://app.example.test' }));
    try {
      const url = `ws://127.0.0.1:${srv.port}/app/${APP.key}?protocol=7`;
      const refused = await wsHandshake(url, { origin: 'https://evil.example.test' });
      assert.equal(refused.status, 403);
      assert.equal(refused.json.error, 'origin_not_allowed');
      const ok = await wsHandshake(url, { origin: 'https://app.example.test' });
      assert.ok(ok.ws, 'allowed origin upgraded');
      ok.ws.terminate();
    } finally { await srv.stop(); }
  });
});
