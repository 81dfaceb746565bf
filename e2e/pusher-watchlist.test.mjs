// Watchlist (PRODUCT §15): a pusher-js client signed in with user_data.watchlist gets
// pusher_internal:watchlist_events: the state at sign-in, then each change; a user is
// online while any of its connections, on any node, is open: a signed-in Pusher one or any
// socket.io one. The socket.io side (jetsocket:signin with user_data.watchlist, the JS
// client's user.watchlist) gets the same. Two nodes on a real redis-server.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients, sleep, withTimeout } from './helpers/clients.mjs';
import { APP, appEnv, sdk } from './helpers/pusher.mjs';
import { pusherJs, connected } from './helpers/pusherjs.mjs';
import { createRequire } from 'node:module';
import { io } from './helpers/clients.mjs';
import { signJwt, claims } from './helpers/jwt.mjs';
import { userClaims } from './helpers/channels.mjs';
import { redisSkip, startRedis } from './helpers/redis.mjs';

const Jetsocket = createRequire(import.meta.url)('../public/js/jetsocket.js');

const skip = redisSkip;


describe('watchlist across protocols and nodes', { skip }, () => {
  let redis;
  let a;
  let b;
  const clients = new Clients();
  before(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([startServer(appEnv({ REDIS_URL: redis.url, ONLINE_ON_CONNECT: 'true' })), startServer(appEnv({ REDIS_URL: redis.url, ONLINE_ON_CONNECT: 'true' }))]);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all([a?.stop(), b?.stop()]);
    redis?.proc.kill();
  });

  // A pusher-js client whose app backend signs the user in with userData.
  const signedIn = async (srv, userData) => {
    const api = sdk(srv);
    const p = pusherJs(srv, {
      clients,
      userAuthentication: { customHandler: ({ socketId }, cb) => cb(null, api.authenticateUser(socketId, userData)) },
    });
    await connected(p);
    return p;
  };
  const watchEvents = (p) => {
    const events = [];
    p.user.watchlist.bind('online', (e) => events.push({ name: 'online', ids: e.user_ids }));
    p.user.watchlist.bind('offline', (e) => events.push({ name: 'offline', ids: e.user_ids }));
    return events;
  };
  const until = (cond, what) => withTimeout(new Promise((resolve) => {
    const t = setInterval(() => { if (cond()) { clearInterval(t); resolve(); } }, 20);
  }), 10_000, what);

  test('state at sign-in, then online and offline from connections on the other node', async () => {
    const sio = await signedIn(b, { id: 'w-sio' });
    sio.signin();
    await sio.user.signinDonePromise;
    const watcher = await signedIn(a, { id: 'w-watcher', watchlist: ['w-sio', 'w-pjs'] });
    const events = watchEvents(watcher);
    watcher.signin();
    await until(() => events.length === 2, 'the state at sign-in');
    assert.deepEqual(events, [{ name: 'online', ids: ['w-sio'] }, { name: 'offline', ids: ['w-pjs'] }]);

    const pjs = await signedIn(b, { id: 'w-pjs' });
    pjs.signin();
    await until(() => events.length === 3, 'w-pjs online');
    assert.deepEqual(events[2], { name: 'online', ids: ['w-pjs'] });

    // A second connection of an online user changes nothing; its last one leaving does.
    const sio2 = await signedIn(a, { id: 'w-sio' });
    sio2.signin();
    await sio2.user.signinDonePromise;
    sio.disconnect();
    await sleep(300);
    assert.equal(events.length, 3, 'w-sio still has a connection');
    sio2.disconnect();
    await until(() => events.length === 4, 'w-sio offline');
    assert.deepEqual(events[3], { name: 'offline', ids: ['w-sio'] });

    pjs.disconnect();
    await until(() => events.length === 5, 'w-pjs offline');
    assert.deepEqual(events[4], { name: 'offline', ids: ['w-pjs'] });
  });

  test('a socket.io client (the JS client) and pusher-js clients watch each other across nodes', async () => {
    // pusher-js on node b watches x-sio, which is offline.
    const pjs = await signedIn(b, { id: 'x-pjs', watchlist: ['x-sio'] });
    const pjsEvents = watchEvents(pjs);
    pjs.signin();
    await until(() => pjsEvents.length === 1, 'the pusher-js state at sign-in');
    assert.deepEqual(pjsEvents, [{ name: 'offline', ids: ['x-sio'] }]);

    // A socket.io connection on node a makes its token's user online, signed in or not.
    const api = sdk(a);
    const sio = new Jetsocket(APP.key, {
      host: a.url, io, token: () => signJwt(claims(userClaims('x-sio'))),
      userAuthentication: { customHandler: ({ socketId }, cb) => cb(null, api.authenticateUser(socketId, { id: 'x-sio', watchlist: ['x-pjs', 'x-pjs2'] })) },
    });
    try {
      const sioEvents = watchEvents(sio);
      await until(() => pjsEvents.length === 2, 'x-sio online');
      assert.deepEqual(pjsEvents[1], { name: 'online', ids: ['x-sio'] });

      await until(() => sio.connection.state === 'connected', 'the JS client connected');
      const ack = await sio.signin();
      assert.equal(ack.ok, true);
      await until(() => sioEvents.length === 2, 'the socket.io state at sign-in');
      assert.deepEqual(sioEvents, [{ name: 'online', ids: ['x-pjs'] }, { name: 'offline', ids: ['x-pjs2'] }]);

      const pjs2 = await signedIn(b, { id: 'x-pjs2' });
      pjs2.signin();
      await until(() => sioEvents.length === 3, 'x-pjs2 online');
      assert.deepEqual(sioEvents[2], { name: 'online', ids: ['x-pjs2'] });
      pjs2.disconnect();
      await until(() => sioEvents.length === 4, 'x-pjs2 offline');
      assert.deepEqual(sioEvents[3], { name: 'offline', ids: ['x-pjs2'] });
    } finally {
      sio.disconnect();
    }
    await until(() => pjsEvents.length === 3, 'x-sio offline');
    assert.deepEqual(pjsEvents[2], { name: 'offline', ids: ['x-sio'] });
    pjs.disconnect();
  });
});
