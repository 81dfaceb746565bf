// Delegated authorization (PRODUCT §5): an app backend signs a subscribe with the official
// pusher SDK's authorizeChannel, for this connection's socket_id; the signature grants the
// channel where the claim rules would not. A presence channel's channel_data names the
// member. Wrong signatures are refused with 403 invalid_auth, never passed to the rules.
// A user sign-in signed with authenticateUser gets what is sent to that user.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';
import { Clients } from './helpers/clients.mjs';
import {
  MEMBER_ADDED, MEMBER_REMOVED, join, emitAck, subscribeOk, subscribeFails, unsubscribe, record, waitForMatch, flush, disconnected,
} from './helpers/channels.mjs';
import { MASTER_KEY_B64, appEnv, sdk, ok } from './helpers/pusher.mjs';

describe('delegated authorization: channels signed by an app backend with the pusher SDK', () => {
  let srv;
  let pusher;
  const clients = new Clients();
  before(async () => {
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 }));
    pusher = sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('a private channel no claim rule allows is granted by the backend signature for this socket', async () => {
    const { socket, info } = await join(srv.url, clients, 'del-1');
    await subscribeFails(socket, 'private-vip', 403, 'forbidden');
    const { auth } = pusher.authorizeChannel(info.socket_id, 'private-vip');
    await subscribeOk(socket, { channel: 'private-vip', auth });

    // The same signature on another connection, or for another channel, is refused.
    const { socket: other } = await join(srv.url, clients, 'del-2');
    await subscribeFails(other, { channel: 'private-vip', auth }, 403, 'invalid_auth');
    await subscribeFails(socket, { channel: 'private-vip-2', auth }, 403, 'invalid_auth');
    await subscribeFails(socket, { channel: 'private-vip', auth: 'wrong-key:' + auth.split(':')[1] }, 403, 'invalid_auth');
  });

  test('an encrypted channel granted by signature comes with its shared secret', async () => {
    const { socket, info } = await join(srv.url, clients, 'del-3'); // no encrypted-channels permission
    await subscribeFails(socket, 'private-encrypted-vip', 403, 'forbidden');
    const signed = pusher.authorizeChannel(info.socket_id, 'private-encrypted-vip');
    const ack = await subscribeOk(socket, { channel: 'private-encrypted-vip', auth: signed.auth });
    assert.equal(ack.shared_secret, signed.shared_secret, 'the key the SDK derives for the same channel');
  });

  test('presence: channel_data names the member; the others see it come and go', async () => {
    const ch = 'presence-crm';
    const { socket: watcher } = await join(srv.url, clients, 'del-watch');
    await subscribeOk(watcher, ch);
    const added = record(watcher, MEMBER_ADDED);
    const removed = record(watcher, MEMBER_REMOVED);

    const { socket, info } = await join(srv.url, clients, 'del-4');
    const presenceData = { user_id: 'crm-42', user_info: { name: 'Eve from the CRM' } };
    const signed = pusher.authorizeChannel(info.socket_id, ch, presenceData);
    const ack = await subscribeOk(socket, { channel: ch, auth: signed.auth, channel_data: signed.channel_data });
    assert.deepEqual(ack.presence.ids, ['crm-42', 'del-watch']);
    assert.deepEqual(ack.presence.hash['crm-42'], { name: 'Eve from the CRM' });
    await waitForMatch(added, (m) => m.user_id === 'crm-42', 5000, 'member_added crm-42');
    assert.deepEqual(added.find((m) => m.user_id === 'crm-42'), { channel: ch, user_id: 'crm-42', user_info: { name: 'Eve from the CRM' } });

    await unsubscribe(socket, ch);
    await waitForMatch(removed, (m) => m.user_id === 'crm-42', 5000, 'member_removed crm-42');
    await flush(watcher);
    assert.equal(removed.filter((m) => m.user_id === 'del-4').length, 0, 'the claims user never was the member');

    // channel_data changed after signing, or missing, is refused.
    await subscribeFails(socket, { channel: ch, auth: signed.auth, channel_data: JSON.stringify({ user_id: 'admin' }) }, 403, 'invalid_auth');
    const bare = pusher.authorizeChannel(info.socket_id, ch);
    await subscribeFails(socket, { channel: ch, auth: bare.auth }, 400, 'invalid_channel_data');
  });

  test('user sign-in: a connection the backend signs in as a user gets what is sent to that user', async () => {
    const { socket, info } = await join(srv.url, clients, 'del-6');
    const signed = pusher.authenticateUser(info.socket_id, { id: 'crm-9', name: 'CRM user' });
    assert.deepEqual(await emitAck(socket, 'jetsocket:signin', signed), { ok: true, user_id: 'crm-9' });
    const notes = record(socket, 'note');
    await ok(pusher.sendToUser('crm-9', 'note', { text: 'for crm-9' }), 'sendToUser');
    await waitForMatch(notes, (m) => m.data?.text === 'for crm-9', 5000, 'note for the signed-in user');

    const { socket: other } = await join(srv.url, clients, 'del-7');
    const stolen = await emitAck(other, 'jetsocket:signin', signed);
    assert.deepEqual([stolen.ok, stolen.status, stolen.code], [false, 403, 'invalid_auth'], JSON.stringify(stolen));
    const noId = pusher.authenticateUser(info.socket_id, { id: 'x' });
    const bad = await emitAck(socket, 'jetsocket:signin', { auth: noId.auth, user_data: '{"name":"no id"}' });
    assert.equal(bad.code, 'invalid_auth', 'user_data changed after signing');

    const gone = disconnected(socket);
    await ok(pusher.terminateUserConnections('crm-9'), 'terminate the signed-in user');
    await gone;
  });

  test('the server kept serving: a plain subscribe still works', async () => {
    const { socket } = await join(srv.url, clients, 'del-5');
    await subscribeOk(socket, 'presence-after');
  });
});
