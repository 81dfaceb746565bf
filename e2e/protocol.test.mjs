// Two holes of issue 13 closed in the socket protocol (PRODUCT §4): internal channels are
// neither subscribed nor unsubscribed by clients, so nobody opts out of sendToUser or
// terminate_connections; and jetsocket:refresh re-checks every subscription against the
// new claims, ending the ones no longer allowed with subscription_error 403.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients } from './helpers/clients.mjs';
import {
  SUB_ERROR, MEMBER_REMOVED, join, userClaims, emitAck, subscribeOk, record, waitForMatch, flush, disconnected,
} from './helpers/channels.mjs';
import { mint } from './helpers/jwt.mjs';
import { appEnv, sdk, ok } from './helpers/pusher.mjs';

describe('internal channels and token refresh', () => {
  let srv;
  let pusher;
  const clients = new Clients();

  before(async () => {
    srv = await startServer(appEnv());
    pusher = sdk(srv);
  });
  after(async () => {
    clients.closeAll();
    await srv?.stop();
  });

  const assertInternalRefused = (ack, channel, what) => {
    assert.deepEqual(ack, {
      ok: false, channel, status: 403, code: 'internal_channel', error: ack.error,
    }, `${what}: ${JSON.stringify(ack)}`);
    assert.match(ack.error, /internal/);
  };

  test('unsubscribing from #server-to-user-<own id> is refused: sendToUser and terminate still reach the connection', async () => {
    const { socket } = await join(srv.url, clients, 'int-1');
    const own = '#server-to-user-int-1';
    assertInternalRefused(await emitAck(socket, 'jetsocket:unsubscribe', { channel: own }), own, 'unsubscribe');
    assertInternalRefused(await emitAck(socket, 'jetsocket:subscribe', { channel: '#server-to-user-int-2' }), '#server-to-user-int-2', 'subscribe');

    const notes = record(socket, 'note');
    await ok(pusher.sendToUser('int-1', 'note', { text: 'still yours' }), 'sendToUser');
    await waitForMatch(notes, (m) => m.data?.text === 'still yours', 5000, 'sendToUser after the refused unsubscribe');

    const gone = disconnected(socket);
    await ok(pusher.terminateUserConnections('int-1'), 'terminate');
    await gone;
  });

  for (const transport of ['websocket', 'polling']) {
    test(`terminate_connections: jetsocket:terminated {code, reason} arrives before the disconnect (${transport})`, async () => {
      const { socket } = await join(srv.url, clients, `term-${transport}`, {}, { transports: [transport] });
      const seen = [];
      socket.on('jetsocket:terminated', (p) => seen.push(['jetsocket:terminated', p]));
      const gone = new Promise((resolve) => socket.once('disconnect', (reason) => { seen.push(['disconnect', reason]); resolve(); }));
      await ok(pusher.terminateUserConnections(`term-${transport}`), 'terminate');
      await gone;
      assert.deepEqual(seen[0], ['jetsocket:terminated', { code: 'terminated', reason: 'terminated by the HTTP API' }], JSON.stringify(seen));
      assert.equal(seen[1][0], 'disconnect', JSON.stringify(seen));
    });
  }

  test('the channel a sign-in adds cannot be unsubscribed either', async () => {
    const { socket, info } = await join(srv.url, clients, 'int-3');
    const signed = pusher.authenticateUser(info.socket_id, { id: 'crm-int', name: 'CRM' });
    assert.deepEqual(await emitAck(socket, 'jetsocket:signin', signed), { ok: true, user_id: 'crm-int' });
    assertInternalRefused(await emitAck(socket, 'jetsocket:unsubscribe', { channel: '#server-to-user-crm-int' }), '#server-to-user-crm-int', 'unsubscribe');

    const notes = record(socket, 'note');
    await ok(pusher.sendToUser('crm-int', 'note', { text: 'signed-in' }), 'sendToUser');
    await waitForMatch(notes, (m) => m.data?.text === 'signed-in', 5000, 'sendToUser to the signed-in user');
    const gone = disconnected(socket);
    await ok(pusher.terminateUserConnections('crm-int'), 'terminate the signed-in user');
    await gone;
  });

  test('a refresh with fewer rights ends the subscriptions it no longer allows (403), and the others see the member leave', async () => {
    const { socket } = await join(srv.url, clients, 'ref-1', { groups: ['sales'] });
    const watcher = await join(srv.url, clients, 'ref-2', { groups: ['sales'] });
    for (const ch of ['news', 'private-group-sales', 'presence-group-sales', 'private-user-ref-1']) await subscribeOk(socket, ch);
    await subscribeOk(watcher.socket, 'presence-group-sales');
    const removed = record(watcher.socket, MEMBER_REMOVED);
    const ended = record(socket, SUB_ERROR);
    const sales = record(socket, 'deal');

    const ack = await emitAck(socket, 'jetsocket:refresh', { token: mint(userClaims('ref-1', { groups: [] })) });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    for (const ch of ['private-group-sales', 'presence-group-sales']) {
      const ev = await waitForMatch(ended, (e) => e.channel === ch, 5000, `subscription_error for ${ch}`);
      assert.equal(ev.status, 403, JSON.stringify(ev));
      assert.equal(typeof ev.error, 'string');
    }
    await waitForMatch(removed, (m) => m.user_id === 'ref-1' && m.channel === 'presence-group-sales', 5000, 'member_removed');
    await flush(socket);
    assert.deepEqual(ended.map((e) => e.channel).sort(), ['presence-group-sales', 'private-group-sales'], 'only the lost channels end');

    // No more deliveries on the lost channel; the ones still allowed keep coming.
    await ok(pusher.trigger('private-group-sales', 'deal', { n: 1 }), 'trigger on the lost channel');
    await ok(pusher.trigger('private-user-ref-1', 'deal', { n: 2 }), 'trigger on a kept channel');
    await waitForMatch(sales, (m) => m.data?.n === 2, 5000, 'the kept channel still delivers');
    await flush(socket);
    assert.deepEqual(sales.map((m) => m.channel), ['private-user-ref-1']);

    // A refresh with the same rights ends nothing.
    const again = await emitAck(socket, 'jetsocket:refresh', { token: mint(userClaims('ref-1', { groups: [] })) });
    assert.equal(again.ok, true);
    await flush(socket);
    assert.equal(ended.length, 2);
  });
});
