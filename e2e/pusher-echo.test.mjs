// Laravel Echo 2.x with the `pusher` broadcaster (PRODUCT §15) against the Pusher endpoint:
// joining a presence channel (here / joining / leaving) and listening to an event a
// backend broadcast with the `pusher` SDK, the way a Laravel app's front end does.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Echo from 'laravel-echo';
import { startServer } from './helpers/server.mjs';
import { Clients, withTimeout } from './helpers/clients.mjs';
import { mint } from './helpers/jwt.mjs';
import { userClaims } from './helpers/channels.mjs';
import { APP, appEnv, sdk } from './helpers/pusher.mjs';
import { Pusher } from './helpers/pusherjs.mjs';

describe('Laravel Echo (broadcaster pusher)', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer(appEnv()); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  const echoFor = (sub) => {
    const echo = new Echo({
      broadcaster: 'pusher',
      Pusher,
      key: APP.key,
      cluster: '',
      wsHost: '127.0.0.1',
      wsPort: srv.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      authEndpoint: `${srv.url}/pusher/auth`,
      auth: { headers: { Authorization: `Bearer ${mint(userClaims(sub))}` } },
    });
    clients.add({ close: () => echo.disconnect() });
    return echo;
  };

  test('join a presence channel, see members come and go, listen to a broadcast', async () => {
    const a = echoFor('echo-a');
    const here = [];
    const joining = [];
    const leaving = [];
    const chA = a.join('chat.1')
      .here((users) => here.push(users))
      .joining((u) => joining.push(u))
      .leaving((u) => leaving.push(u));
    const until = (cond, what) => withTimeout(new Promise((resolve) => {
      const t = setInterval(() => { if (cond()) { clearInterval(t); resolve(); } }, 20);
    }), 10_000, what);
    await until(() => here.length === 1, 'here');
    assert.deepEqual(here[0], [{ name: 'User echo-a' }]);

    const b = echoFor('echo-b');
    const hereB = [];
    b.join('chat.1').here((users) => hereB.push(users));
    await until(() => hereB.length === 1 && joining.length === 1, 'b here and a told');
    assert.deepEqual(hereB[0].map((u) => u.name).sort(), ['User echo-a', 'User echo-b']);
    assert.deepEqual(joining, [{ name: 'User echo-b' }]);

    const got = new Promise((resolve) => chA.listen('.OrderShipped', resolve));
    await sdk(srv).trigger('presence-chat.1', 'OrderShipped', { order: 42 });
    assert.deepEqual(await withTimeout(got, 10_000, 'OrderShipped'), { order: 42 });

    b.leave('chat.1');
    await until(() => leaving.length === 1, 'leaving');
    assert.deepEqual(leaving, [{ name: 'User echo-b' }]);
  });
});
