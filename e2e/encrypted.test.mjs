// Encrypted channels end to end (PRODUCT §6, with §3 and §4): the official `pusher` SDK
// encrypts with ENCRYPTION_MASTER_KEY, the server relays {nonce, ciphertext} untouched, an
// authorized socket.io subscriber gets the channel key as shared_secret and opens the
// payload with tweetnacl. Refusals: plaintext or mixed-channel triggers, subscribers without
// the permission or the name rule, a server without a master key, a master key of the wrong
// size, client events.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { startServer, runServerExpectingExit } from './helpers/server.mjs';
import { Clients, ping } from './helpers/clients.mjs';
import {
  ERROR, SUBSCRIBED, SUB_ERROR, join, subscribeOk, subscribeFails, record, waitForMatch, waitUntil, flush, clientEvent,
} from './helpers/channels.mjs';
import { assertNoLeak } from './helpers/assert.mjs';
import {
  APP, MASTER_KEY, MASTER_KEY_B64, appEnv, sdk, ok, refused, assertApiError,
} from './helpers/pusher.mjs';

const ENC = 'private-encrypted-user-7';

/** The channel key PRODUCT §6 and Pusher's SDKs derive: SHA-256(channel name bytes || master key bytes). */
const channelKey = (channel, master = MASTER_KEY) =>
  createHash('sha256').update(Buffer.concat([Buffer.from(channel, 'utf8'), master])).digest();

/** open decrypts {nonce, ciphertext} with a base64 key; resolves the parsed JSON or null if it does not open. */
function open(data, keyB64) {
  assert.ok(data && typeof data === 'object', `encrypted data is an object: ${JSON.stringify(data)}`);
  assert.deepEqual(Object.keys(data).sort(), ['ciphertext', 'nonce'], `encrypted data is exactly {nonce, ciphertext}: ${JSON.stringify(data)}`);
  const nonce = Buffer.from(data.nonce, 'base64');
  assert.equal(nonce.length, nacl.secretbox.nonceLength, 'the nonce is 24 bytes');
  assert.equal(nonce.toString('base64'), data.nonce, 'the nonce is standard base64');
  const box = Buffer.from(data.ciphertext, 'base64');
  assert.equal(box.toString('base64'), data.ciphertext, 'the ciphertext is standard base64');
  const plain = nacl.secretbox.open(new Uint8Array(box), new Uint8Array(nonce), new Uint8Array(Buffer.from(keyB64, 'base64')));
  return plain === null ? null : JSON.parse(Buffer.from(plain).toString('utf8'));
}

/** Claims extras for a user allowed encrypted channels by permission. */
const permitted = { permissions: ['encrypted-channels'] };

describe('encrypted channels: SDK encrypts, server relays, subscriber decrypts', () => {
  let srv;
  let pusher;
  const clients = new Clients();
  const MARKER = `plaintext-marker-${randomBytes(8).toString('hex')}`;
  let sub; // user 7 with the permission, subscribed to ENC
  let sub2; // user 7's second connection, subscribed to ENC
  let secret;

  before(async () => {
    srv = await startServer(appEnv({ ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 }));
    pusher = sdk(srv, { encryptionMasterKeyBase64: MASTER_KEY_B64 });
    sub = (await join(srv.url, clients, '7', permitted)).socket;
    sub2 = (await join(srv.url, clients, '7', permitted)).socket;
    const ack = await subscribeOk(sub, ENC);
    secret = ack.shared_secret;
    await subscribeOk(sub2, ENC);
  });
  after(async () => {
    clients.closeAll();
    const out = srv?.output() ?? '';
    await srv?.stop();
    assertNoLeak(out, [MARKER], 'plaintext of an encrypted channel');
    assertNoLeak(out, [MASTER_KEY_B64, secret, APP.secret], 'key material');
  });

  test('the ack carries shared_secret = base64(SHA-256(channel name || master key)), the SDK\'s key', () => {
    assert.equal(typeof secret, 'string', 'shared_secret in the ack');
    assert.equal(secret, channelKey(ENC).toString('base64'));
    assert.equal(secret, pusher.channelSharedSecret(ENC).toString('base64'), 'same key as the SDK derives');
    assert.notEqual(secret, channelKey('private-encrypted-user-8').toString('base64'), 'the key depends on the channel');
  });

  test('pusher.trigger on the encrypted channel: {nonce, ciphertext} arrives and opens to the data', async () => {
    const got = { a: record(sub, 'secret'), b: record(sub2, 'secret') };
    const data = { hi: 1, marker: MARKER, text: 'caf\u00e9 \u2713' };
    const res = await ok(pusher.trigger(ENC, 'secret', data), 'encrypted trigger');
    assert.deepEqual(res.json, {});
    for (const k of ['a', 'b']) {
      const p = await waitForMatch(got[k], () => true, 5000, `secret on ${k}`);
      assert.deepEqual(Object.keys(p).sort(), ['channel', 'data'], `payload is {channel, data}: ${JSON.stringify(p)}`);
      assert.equal(p.channel, ENC);
      assert.ok(!JSON.stringify(p).includes(MARKER), 'the plaintext is not on the wire');
      assert.deepEqual(open(p.data, secret), data, `${k} decrypts the event with its shared_secret`);
      assert.equal(open(p.data, channelKey('private-encrypted-user-8').toString('base64')), null,
        'another channel\'s key does not open it');
    }
    // A second trigger of the same data uses a fresh nonce.
    await ok(pusher.trigger(ENC, 'secret', data), 'encrypted trigger again');
    await waitUntil(() => got.a.length >= 2, 5000, 'second secret');
    assert.notEqual(got.a[1].data.nonce, got.a[0].data.nonce, 'a fresh nonce per event');
    assert.deepEqual(open(got.a[1].data, secret), data);
  });

  test('the server relays {nonce, ciphertext} byte for byte', async () => {
    const got = record(sub, 'relay');
    const nonce = randomBytes(24);
    const plain = Buffer.from(JSON.stringify({ relayed: MARKER }));
    const box = nacl.secretbox(new Uint8Array(plain), new Uint8Array(nonce), new Uint8Array(channelKey(ENC)));
    const sent = { nonce: nonce.toString('base64'), ciphertext: Buffer.from(box).toString('base64') };
    await ok(pusher.post({ path: '/events', body: { name: 'relay', channel: ENC, data: JSON.stringify(sent) } }), 'raw encrypted');
    const p = await waitForMatch(got, () => true, 5000, 'relay');
    assert.deepEqual(p, { channel: ENC, data: sent }, 'nonce and ciphertext arrive exactly as sent');
    assert.deepEqual(open(p.data, secret), { relayed: MARKER });
  });

  test('triggerBatch mixing an encrypted and a public channel: each event on its own channel, encrypted one decrypts', async () => {
    const { socket: pub } = await join(srv.url, clients, 'pub-batch');
    await subscribeOk(pub, 'enc-batch-news');
    const got = { enc: record(sub, 'batch-ev'), pub: record(pub, 'batch-ev') };
    await ok(pusher.triggerBatch([
      { channel: ENC, name: 'batch-ev', data: { n: 1, marker: MARKER } },
      { channel: 'enc-batch-news', name: 'batch-ev', data: { n: 2 } },
    ]), 'batch');
    const e = await waitForMatch(got.enc, () => true, 5000, 'encrypted batch event');
    assert.equal(e.channel, ENC);
    assert.deepEqual(open(e.data, secret), { n: 1, marker: MARKER });
    assert.deepEqual(await waitForMatch(got.pub, () => true, 5000, 'public batch event'), { channel: 'enc-batch-news', data: { n: 2 } });
    await flush(sub, pub);
    assert.equal(got.enc.length, 1);
    assert.equal(got.pub.length, 1, 'the public subscriber got only its own event');
  });

  test('data that is not {nonce, ciphertext} on an encrypted channel -> 400, nothing delivered, plaintext not echoed', async () => {
    const got = { a: record(sub, 'plain'), b: record(sub2, 'plain') };
    const good = { nonce: randomBytes(24).toString('base64'), ciphertext: randomBytes(40).toString('base64') };
    const cases = [
      ['a plain string', MARKER],
      ['a JSON object', JSON.stringify({ hi: 1, marker: MARKER })],
      ['a JSON string', JSON.stringify(MARKER)],
      ['only a nonce', JSON.stringify({ nonce: good.nonce, marker: MARKER })],
      ['only a ciphertext', JSON.stringify({ ciphertext: good.ciphertext, marker: MARKER })],
      ['a 23-byte nonce', JSON.stringify({ nonce: randomBytes(23).toString('base64'), ciphertext: good.ciphertext })],
      ['a nonce that is not base64', JSON.stringify({ nonce: `!${MARKER}`, ciphertext: good.ciphertext })],
      ['a ciphertext that is not base64', JSON.stringify({ nonce: good.nonce, ciphertext: `*${MARKER}*` })],
      ['a ciphertext shorter than the authenticator', JSON.stringify({ nonce: good.nonce, ciphertext: randomBytes(8).toString('base64') })],
      ['an empty string', ''],
    ];
    const wrong = [];
    for (const [what, data] of cases) {
      const res = await refused(pusher.post({ path: '/events', body: { name: 'plain', channel: ENC, data } }), what);
      try {
        assertApiError(res, 400, undefined, what);
        assert.ok(!res.text.includes(MARKER), `${what}: the refusal does not echo the plaintext`);
      } catch (err) {
        wrong.push(`${what}: data ${JSON.stringify(data)} -> ${res.status} ${res.text}`);
      }
    }
    // The same in a batch: refused whole.
    const res = await refused(pusher.post({
      path: '/batch_events',
      body: { batch: [{ name: 'plain', channel: 'enc-batch-news', data: '"fine"' }, { name: 'plain', channel: ENC, data: MARKER }] },
    }), 'batch with plaintext');
    assertApiError(res, 400, undefined, 'batch with plaintext for an encrypted channel');
    assert.ok(!res.text.includes(MARKER), 'the batch refusal does not echo the plaintext');
    await flush(sub, sub2);
    assert.deepEqual(wrong, [], 'every non-ciphertext data is refused with 400 JSON');
    assert.deepEqual(got.a, [], 'nothing delivered');
    assert.deepEqual(got.b, [], 'nothing delivered');
  });

  test('an encrypted channel together with other channels in one trigger -> 400, nothing delivered anywhere', async () => {
    const { socket: pub } = await join(srv.url, clients, 'pub-mixed');
    await subscribeOk(pub, 'mixed-news');
    const got = { enc: record(sub, 'mixed'), pub: record(pub, 'mixed') };
    assert.throws(() => pusher.trigger([ENC, 'mixed-news'], 'mixed', { m: MARKER }), /encrypted channels/, 'the SDK refuses it itself');
    const box = { nonce: randomBytes(24).toString('base64'), ciphertext: randomBytes(40).toString('base64') };
    for (const channels of [[ENC, 'mixed-news'], ['mixed-news', ENC], [ENC, 'private-encrypted-user-8']]) {
      const res = await refused(pusher.post({ path: '/events', body: { name: 'mixed', channels, data: JSON.stringify(box) } }), `channels ${channels}`);
      assertApiError(res, 400, undefined, `encrypted with others: ${channels}`);
    }
    await flush(sub, pub);
    assert.deepEqual(got.enc, []);
    assert.deepEqual(got.pub, [], 'the public channel of a refused trigger got nothing');
  });

  test('admin role without the permission, and group rule with the permission, get the channel key', async () => {
    const { socket: admin } = await join(srv.url, clients, 'adm', { role: 'admin' });
    const ack = await subscribeOk(admin, 'private-encrypted-user-adm');
    assert.equal(ack.shared_secret, channelKey('private-encrypted-user-adm').toString('base64'));
    const { socket: member } = await join(srv.url, clients, 'gm', { ...permitted, groups: ['vault'] });
    const ack2 = await subscribeOk(member, 'private-encrypted-group-vault');
    assert.equal(ack2.shared_secret, channelKey('private-encrypted-group-vault').toString('base64'));
    const got = record(member, 'g');
    await ok(pusher.trigger('private-encrypted-group-vault', 'g', { g: 1 }), 'group trigger');
    assert.deepEqual(open((await waitForMatch(got, () => true, 5000, 'group event')).data, ack2.shared_secret), { g: 1 });
  });

  test('refused subscribers (no permission; permission but another user\'s channel; no group) never see a key or an event', async () => {
    const denied = [
      ['no permission, own channel', '9', {}, 'private-encrypted-user-9'],
      ['role moderator, own channel', '10', { role: 'moderator' }, 'private-encrypted-user-10'],
      ['permission, another user\'s channel', '8', permitted, ENC],
      ['permission, not in the group', '11', permitted, 'private-encrypted-group-vault'],
      ['no permission, no name rule', '12', {}, 'private-encrypted-secure-chat'],
    ];
    const watchers = [];
    for (const [what, subId, extra, ch] of denied) {
      const { socket } = await join(srv.url, clients, subId, extra);
      const all = [];
      socket.onevent = ((orig) => function (packet) { all.push(packet.data); return orig.call(this, packet); })(socket.onevent);
      const ack = await subscribeFails(socket, ch, 403, 'forbidden');
      assert.equal('shared_secret' in ack, false, `${what}: no shared_secret in the ack`);
      watchers.push({ what, socket, ch, all, got: record(socket, 'after-deny') });
    }
    for (const ch of new Set(watchers.map((w) => w.ch))) {
      await ok(pusher.trigger(ch, 'after-deny', { m: MARKER }), `trigger ${ch}`);
    }
    for (const w of watchers) {
      await flush(w.socket);
      assert.deepEqual(w.got, [], `${w.what}: no event of the refused channel`);
      const key = channelKey(w.ch).toString('base64');
      const seen = JSON.stringify(w.all);
      assert.ok(!seen.includes(key), `${w.what}: the channel key never reached the socket: ${seen.slice(0, 300)}`);
      assert.ok(!seen.includes('shared_secret'), `${w.what}: no shared_secret field in anything sent: ${seen.slice(0, 300)}`);
      assert.ok(w.all.some((d) => d?.[0] === SUB_ERROR), `${w.what}: the socket did see its subscription_error`);
      assert.ok(!w.all.some((d) => d?.[0] === SUBSCRIBED && d?.[1]?.channel === w.ch), `${w.what}: no subscription_succeeded`);
    }
  });

  test('client events on an encrypted channel are refused (client_events_forbidden) and not relayed', async () => {
    const errors = record(sub, ERROR);
    const got = record(sub2, 'client-hi');
    const ack = await clientEvent(sub, 'client-hi', ENC, { m: MARKER });
    assert.equal(ack?.ok, false, `ack ${JSON.stringify(ack)}`);
    assert.equal(ack.code, 'client_events_forbidden', `ack ${JSON.stringify(ack)}`);
    const ev = await waitForMatch(errors, (e) => e?.code === 'client_events_forbidden', 5000, 'jetsocket:error client_events_forbidden');
    assert.equal(typeof ev.message, 'string');
    await flush(sub, sub2);
    assert.deepEqual(got, [], 'the other subscriber got nothing');
    assert.equal((await ping(sub)).pong, true, 'the sender stays connected');
  });
});

describe('encrypted channels: configuration', () => {
  test('without ENCRYPTION_MASTER_KEY an encrypted subscribe is refused: 500 encryption_not_configured, no key', async () => {
    const clients = new Clients();
    const srv = await startServer(appEnv());
    try {
      const { socket } = await join(srv.url, clients, '7', permitted);
      const ack = await subscribeFails(socket, ENC, 500, 'encryption_not_configured');
      assert.equal('shared_secret' in ack, false, `no shared_secret: ${JSON.stringify(ack)}`);
      assert.equal((await ping(socket)).pong, true, 'the connection stays usable');
      const { socket: other } = await join(srv.url, clients, '8');
      await subscribeOk(other, 'still-works');
    } finally {
      clients.closeAll();
      await srv.stop();
    }
  });

  const badKeys = [
    ['16 bytes', randomBytes(16).toString('base64')],
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['64 bytes', randomBytes(64).toString('base64')],
    ['not base64', `not base64 at all ${'!'.repeat(30)}`],
  ];
  for (const [what, key] of badKeys) {
    test(`ENCRYPTION_MASTER_KEY of ${what} stops start-up with a line naming it`, async () => {
      const { code, signal, output } = await runServerExpectingExit(appEnv({ ENCRYPTION_MASTER_KEY: key }));
      assert.equal(signal, null, `exited by itself, not killed after the timeout:\n${output}`);
      assert.notEqual(code, 0, `non-zero exit:\n${output}`);
      assert.match(output, /config: ENCRYPTION_MASTER_KEY/, `a line naming the variable:\n${output}`);
    });
  }
});
