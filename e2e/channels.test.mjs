// Channel subscriptions and the default rules (PRODUCT §4 subscribe/unsubscribe, §5 guards):
// names, payloads, user-/group-/role rules, encrypted channels and their shared secret,
// per-connection limits, expired tokens, and start-up refusal of a bad CHANNEL_ROLES.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, runServerExpectingExit } from './helpers/server.mjs';
import { mint, nowSeconds } from './helpers/jwt.mjs';
import { connect, ping, sleep, Clients, RawEio } from './helpers/clients.mjs';
import {
  SUBSCRIBED, SUB_ERROR, join, emitAck, subscribeOk, subscribeFails, unsubscribe,
  record, waitForMatch, userClaims,
} from './helpers/channels.mjs';

const MASTER_KEY = Buffer.from('0123456789abcdef0123456789abcdef'); // 32 bytes
const MASTER_KEY_B64 = MASTER_KEY.toString('base64');
const CHANNEL_ROLES = 'private-admin-*=admin;private-moderator-*=admin,moderator;presence-staff-*=admin;'
  + 'private-encrypted-team-*=admin,user';

/** The shared secret PRODUCT §6 / Pusher derive: base64(SHA-256(channel name || master key)). */
const sharedSecret = (channel, key = MASTER_KEY) =>
  createHash('sha256').update(Buffer.from(channel, 'utf8')).update(key).digest('base64');

describe('subscribe: names, payloads and default rules', () => {
  let srv;
  const clients = new Clients();
  before(async () => {
    srv = await startServer({ CHANNEL_ROLES, ENCRYPTION_MASTER_KEY: MASTER_KEY_B64 });
  });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('public channel over the default transports (polling, then websocket): ok ack and subscription_succeeded', async () => {
    const { socket } = await connect(srv.url, mint(userClaims('pub-1')), { clients });
    const ack = await subscribeOk(socket, 'news');
    assert.deepEqual(ack, { ok: true, channel: 'news' }, 'a public channel ack has no presence or shared_secret');
    // Re-subscribing is harmless.
    assert.deepEqual(await subscribeOk(socket, 'news'), { ok: true, channel: 'news' });
    await unsubscribe(socket, 'news');
    assert.equal((await ping(socket)).pong, true, 'connection still serves after unsubscribe');
  });

  test('every allowed character and exactly 164 characters are valid names', async () => {
    const { socket } = await join(srv.url, clients, 'names-ok');
    await subscribeOk(socket, 'a-b_c=d@e,f.g;h');
    await subscribeOk(socket, 'AZaz09');
    const longest = 'n'.repeat(164);
    await subscribeOk(socket, longest);
    await subscribeOk(socket, `presence-${'p'.repeat(164 - 'presence-'.length)}`);
  });

  const badNames = [
    ['empty', ''],
    ['165 characters', 'n'.repeat(165)],
    ['a space', 'has space'],
    ['a slash', 'a/b'],
    ['a hash', 'a#b'],
    ['a colon', 'a:b'],
    ['a star', 'a*b'],
    ['a non-ASCII letter', 'caf\u00e9'],
    ['a newline', 'a\nb'],
    ['a NUL byte', 'a\u0000b'],
    ['a private channel of 165 characters', `private-${'x'.repeat(165 - 'private-'.length)}`],
  ];
  for (const [what, name] of badNames) {
    test(`channel name with ${what} -> 400 invalid_channel`, async () => {
      const { socket } = await join(srv.url, clients, 'names-bad');
      await subscribeFails(socket, name, 400, 'invalid_channel');
      assert.equal((await ping(socket)).pong, true, 'connection still serves');
    });
  }

  const badPayloads = [
    ['a string', 'news'],
    ['a number', 5],
    ['null', null],
    ['an array', [{ channel: 'news' }]],
    ['channel as a number', { channel: 5 }],
    ['channel as an object', { channel: { name: 'news' } }],
    ['channel as an array', { channel: ['news'] }],
    ['auth as a number', { channel: 'news', auth: 5 }],
  ];
  for (const [what, payload] of badPayloads) {
    test(`subscribe payload that is ${what} -> 400 invalid_payload (ack and subscription_error), then a good subscribe works`, async () => {
      const { socket } = await join(srv.url, clients, 'payloads');
      const errors = record(socket, SUB_ERROR);
      const ack = await emitAck(socket, 'jetsocket:subscribe', payload);
      assert.equal(ack?.ok, false, `ack ${JSON.stringify(ack)}`);
      assert.equal(ack.status, 400, `ack ${JSON.stringify(ack)}`);
      assert.equal(ack.code, 'invalid_payload', `ack ${JSON.stringify(ack)}`);
      assert.equal(typeof ack.error, 'string');
      const ev = await waitForMatch(errors, (e) => e.code === 'invalid_payload', 5000, 'subscription_error');
      assert.equal(ev.status, 400);
      await subscribeOk(socket, 'after-bad-payload');
    });
  }

  test('channel {channel: null} is an empty name -> 400', async () => {
    const { socket } = await join(srv.url, clients, 'payload-null');
    const ack = await emitAck(socket, 'jetsocket:subscribe', { channel: null });
    assert.equal(ack?.ok, false, JSON.stringify(ack));
    assert.equal(ack.status, 400, JSON.stringify(ack));
  });

  test('user-<id>: only the user whose sub is <id>, on private and presence; a public user- name is public', async () => {
    const { socket: seven } = await join(srv.url, clients, '7');
    const { socket: eight } = await join(srv.url, clients, '8');
    await subscribeOk(seven, 'private-user-7');
    await subscribeOk(seven, 'presence-user-7');
    await subscribeFails(eight, 'private-user-7', 403, 'forbidden');
    await subscribeFails(eight, 'presence-user-7', 403, 'forbidden');
    await subscribeFails(seven, 'private-user-70', 403, 'forbidden');
    await subscribeFails(seven, 'private-user-', 403, 'forbidden');
    await subscribeOk(eight, 'user-7');
  });

  test('user-<id> is compared exactly: sub "07" is not user 7', async () => {
    const { socket: padded } = await join(srv.url, clients, '07');
    await subscribeFails(padded, 'private-user-7', 403, 'forbidden');
    await subscribeOk(padded, 'private-user-07');
  });

  test('group-<gid>: only members of the group', async () => {
    const { socket: staff } = await join(srv.url, clients, 'g1', { groups: ['staff', 'ops'] });
    const { socket: other } = await join(srv.url, clients, 'g2', { groups: ['support'] });
    const { socket: none } = await join(srv.url, clients, 'g3', { groups: undefined });
    await subscribeOk(staff, 'private-group-staff');
    await subscribeOk(staff, 'presence-group-ops');
    await subscribeFails(other, 'private-group-staff', 403, 'forbidden');
    await subscribeFails(other, 'presence-group-staff', 403, 'forbidden');
    await subscribeFails(none, 'private-group-staff', 403, 'forbidden');
    await subscribeFails(staff, 'private-group-sta', 403, 'forbidden');
    await subscribeFails(staff, 'private-group-', 403, 'forbidden');
  });

  test('CHANNEL_ROLES patterns match the full name and allow only their roles', async () => {
    const { socket: admin } = await join(srv.url, clients, 'r-admin', { role: 'admin' });
    const { socket: mod } = await join(srv.url, clients, 'r-mod', { role: 'moderator' });
    const { socket: user } = await join(srv.url, clients, 'r-user', { role: 'user' });
    const { socket: noRole } = await join(srv.url, clients, 'r-none', { role: undefined });

    await subscribeOk(admin, 'private-admin-board');
    await subscribeFails(mod, 'private-admin-board', 403, 'forbidden');
    await subscribeFails(user, 'private-admin-board', 403, 'forbidden');
    await subscribeFails(noRole, 'private-admin-board', 403, 'forbidden');

    await subscribeOk(admin, 'private-moderator-queue');
    await subscribeOk(mod, 'private-moderator-queue');
    await subscribeFails(user, 'private-moderator-queue', 403, 'forbidden');

    await subscribeOk(admin, 'presence-staff-room');
    await subscribeFails(user, 'presence-staff-room', 403, 'forbidden');
    // Patterns are matched against the full name: presence-admin-* is not private-admin-*.
    await subscribeOk(user, 'presence-admin-board');
  });

  test('presence- with no rule matching: anyone; private- with no rule matching: nobody, admins included', async () => {
    const { socket: admin } = await join(srv.url, clients, 'd-admin', { role: 'admin', groups: ['staff'] });
    const { socket: user } = await join(srv.url, clients, 'd-user');
    await subscribeOk(user, 'presence-lobby');
    await subscribeOk(admin, 'presence-lobby');
    await subscribeFails(user, 'private-lobby', 403, 'forbidden');
    await subscribeFails(admin, 'private-lobby', 403, 'forbidden');
    await subscribeFails(admin, 'private-staff', 403, 'forbidden');
  });

  test('private-encrypted-: the encrypted-channels permission or role admin, plus any name rule that applies; ack carries the shared secret', async () => {
    const ch = 'private-encrypted-user-e1';
    const { socket: withPerm } = await join(srv.url, clients, 'e1', { permissions: ['encrypted-channels'] });
    const ack = await subscribeOk(withPerm, ch);
    assert.equal(ack.shared_secret, sharedSecret(ch), 'shared_secret = base64(SHA-256(name || master key))');
    assert.equal(Buffer.from(ack.shared_secret, 'base64').length, 32);
    assert.equal(ack.presence, undefined);

    const { socket: adminNoPerm } = await join(srv.url, clients, 'e1', { role: 'admin', permissions: [] });
    assert.equal((await subscribeOk(adminNoPerm, ch)).shared_secret, sharedSecret(ch));

    const { socket: plain } = await join(srv.url, clients, 'e1', { permissions: ['other'] });
    const refused = await subscribeFails(plain, ch, 403, 'forbidden');
    assert.equal(refused.shared_secret, undefined, 'no secret on refusal');

    // The user- rule still applies: the permission alone is not enough.
    const { socket: otherUser } = await join(srv.url, clients, 'e2', { permissions: ['encrypted-channels'] });
    await subscribeFails(otherUser, ch, 403, 'forbidden');
    // No name rule matches private-encrypted-secure-chat: the permission (or role admin) is enough.
    const open = 'private-encrypted-secure-chat';
    assert.equal((await subscribeOk(withPerm, open)).shared_secret, sharedSecret(open));
    assert.equal((await subscribeOk(adminNoPerm, open)).shared_secret, sharedSecret(open));
    await subscribeFails(plain, open, 403, 'forbidden');

    // A role rule for encrypted channels: role user allowed by the pattern, still needs the permission.
    const team = 'private-encrypted-team-blue';
    await subscribeFails(plain, team, 403, 'forbidden');
    assert.equal((await subscribeOk(withPerm, team)).shared_secret, sharedSecret(team));
    assert.notEqual(sharedSecret(team), sharedSecret(ch), 'secrets differ per channel');

    const { socket: groupie } = await join(srv.url, clients, 'e3', { groups: ['vault'], permissions: ['encrypted-channels'] });
    const g = 'private-encrypted-group-vault';
    assert.equal((await subscribeOk(groupie, g)).shared_secret, sharedSecret(g));
  });

  test('private and presence acks: private has no presence, presence has presence and no shared_secret', async () => {
    const { socket } = await join(srv.url, clients, 'shape', { groups: ['staff'] });
    const priv = await subscribeOk(socket, 'private-group-staff');
    assert.deepEqual(priv, { ok: true, channel: 'private-group-staff' });
    const pres = await subscribeOk(socket, 'presence-shape');
    assert.equal(pres.shared_secret, undefined);
    assert.deepEqual(pres.presence, { count: 1, ids: ['shape'], hash: { shape: { name: 'User shape' } } });
  });

  test('unsubscribe acks {ok:true, channel}, also for a channel never subscribed', async () => {
    const { socket } = await join(srv.url, clients, 'unsub');
    await subscribeOk(socket, 'private-user-unsub');
    await unsubscribe(socket, 'private-user-unsub');
    await unsubscribe(socket, 'private-user-unsub');
    await unsubscribe(socket, 'never-subscribed');
    await subscribeOk(socket, 'private-user-unsub');
  });

  test('garbage subscribes over a raw connection get 400, then a good subscribe on the same connection succeeds', async () => {
    const raw = clients.add(await RawEio.open(srv.url, mint(userClaims('raw-garbage'))));
    await raw.next((f) => f === '40', 5000, 'socket.io connect');
    await raw.next((f) => f.startsWith('42["jetsocket:connection_established"'), 5000, 'connection_established');

    const isSubError = (f) => f.startsWith(`42["${SUB_ERROR}"`);
    const garbage = ['42["jetsocket:subscribe","x"]', '42["jetsocket:subscribe",{"channel":5}]', '42["jetsocket:subscribe"]'];
    for (const frame of garbage) {
      raw.send(frame);
      const ev = JSON.parse((await raw.next(isSubError, 5000, `subscription_error for ${frame}`)).slice(2));
      assert.equal(ev[1].status, 400, `${frame} -> ${JSON.stringify(ev)}`);
      assert.equal(ev[1].code, 'invalid_payload', `${frame} -> ${JSON.stringify(ev)}`);
    }
    // The same with ack ids: the ack says 400 as well.
    const withAcks = ['4211["jetsocket:subscribe","x"]', '4212["jetsocket:subscribe",{"channel":5}]', '4213["jetsocket:subscribe"]',
      '4214["jetsocket:subscribe",{"channel":"bad name"}]'];
    for (const [i, frame] of withAcks.entries()) {
      raw.send(frame);
      const ackFrame = await raw.next((f) => f.startsWith(`43${11 + i}[`), 5000, `ack for ${frame}`);
      const [ack] = JSON.parse(ackFrame.slice(`43${11 + i}`.length));
      assert.equal(ack.ok, false, `${frame} -> ${ackFrame}`);
      assert.equal(ack.status, 400, `${frame} -> ${ackFrame}`);
      await raw.next(isSubError, 5000, `subscription_error for ${frame}`);
    }
    raw.send('4220["jetsocket:subscribe",{"channel":"presence-after-garbage"}]');
    const okFrame = await raw.next((f) => f.startsWith('4320['), 5000, 'ack of the good subscribe');
    const [ack] = JSON.parse(okFrame.slice(4));
    assert.equal(ack.ok, true, okFrame);
    assert.equal(ack.channel, 'presence-after-garbage');
    assert.deepEqual(ack.presence?.ids, ['raw-garbage'], okFrame);
    await raw.next((f) => f.startsWith(`42["${SUBSCRIBED}"`), 5000, 'subscription_succeeded');
    assert.equal(raw.isClosed, false, 'raw connection still open');
  });
});

describe('subscribe limits', () => {
  const clients = new Clients();
  after(() => clients.closeAll());

  test('MAX_SUBSCRIPTIONS=3: a fourth channel gets 429 too_many_subscriptions; re-subscribing, refusals and other connections do not count', async () => {
    const srv = await startServer({ MAX_SUBSCRIPTIONS: '3' });
    try {
      const { socket } = await join(srv.url, clients, 'max');
      // Refused subscriptions do not take a slot.
      for (let i = 0; i < 3; i++) await subscribeFails(socket, `private-nope-${i}`, 403, 'forbidden');
      await subscribeOk(socket, 'a');
      await subscribeOk(socket, 'private-user-max');
      await subscribeOk(socket, 'presence-c');
      await subscribeFails(socket, 'd', 429, 'too_many_subscriptions');
      // Re-subscribing an existing channel is not a new one.
      await subscribeOk(socket, 'a');
      await subscribeOk(socket, 'presence-c');
      // Unsubscribing frees a slot.
      await unsubscribe(socket, 'a');
      await subscribeOk(socket, 'd');
      await subscribeFails(socket, 'a', 429, 'too_many_subscriptions');
      // The limit is per connection.
      const { socket: other } = await join(srv.url, clients, 'max');
      for (const ch of ['a', 'b', 'c']) await subscribeOk(other, ch);
    } finally {
      clients.closeAll();
      await srv.stop();
    }
  });

  test('SUBSCRIBE_RATE=2 (burst 4): a burst of 20 attempts gets 429 rate_limited for some, later attempts work again', async () => {
    const srv = await startServer({ SUBSCRIBE_RATE: '2' });
    try {
      const { socket } = await join(srv.url, clients, 'rate');
      const acks = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        emitAck(socket, 'jetsocket:subscribe', { channel: `burst-${i}` }, 10_000)));
      const ok = acks.filter((a) => a?.ok === true);
      const limited = acks.filter((a) => a?.ok === false && a.status === 429 && a.code === 'rate_limited');
      assert.equal(ok.length + limited.length, 20, `every ack is ok or 429 rate_limited: ${JSON.stringify(acks)}`);
      assert.ok(ok.length >= 1, 'the burst allowance lets some through');
      assert.ok(limited.length >= 1, `some are rate limited (ok: ${ok.length})`);
      assert.ok(ok.length < 20, 'not all 20 went through');
      // Tokens come back at 2/s.
      await sleep(2500);
      await subscribeOk(socket, 'after-the-burst');
      // Another connection has its own allowance.
      const { socket: other } = await join(srv.url, clients, 'rate-2');
      await subscribeOk(other, 'fresh');
    } finally {
      clients.closeAll();
      await srv.stop();
    }
  });
});

describe('encrypted channels without ENCRYPTION_MASTER_KEY', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({}); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  test('an allowed private-encrypted- subscribe gets 500 encryption_not_configured; refused ones still 403', async () => {
    const { socket: admin } = await join(srv.url, clients, 'nokey', { role: 'admin' });
    const ack = await subscribeFails(admin, 'private-encrypted-user-nokey', 500, 'encryption_not_configured');
    assert.equal(ack.shared_secret, undefined);
    const { socket: user } = await join(srv.url, clients, 'nokey-2');
    await subscribeFails(user, 'private-encrypted-user-nokey', 403, 'forbidden');
    assert.equal((await ping(admin)).pong, true, 'connection still serves');
    await subscribeOk(admin, 'private-user-nokey');
  });
});

describe('expired token on an open connection', () => {
  let srv;
  const clients = new Clients();
  before(async () => { srv = await startServer({ JWT_LEEWAY: '0s' }); });
  after(async () => { clients.closeAll(); await srv?.stop(); });

  // PRODUCT §4: a subscribe after the token expired gets 401 token_expired, and at expiry the
  // server emits jetsocket:token_expired and closes the connection. Either way an expired token
  // must never win a subscription: subscribes are sent every 100 ms from just before expiry
  // until the connection closes, and every answer after expiry must be a refusal.
  test('a token past its exp never subscribes: 401 token_expired or token_expired and close, nothing succeeds after', { timeout: 30_000 }, async () => {
    const exp = nowSeconds() + 3;
    const raw = clients.add(await RawEio.open(srv.url, mint(userClaims('exp-1', { exp }))));
    await raw.next((f) => f === '40', 5000, 'socket.io connect');
    await raw.next((f) => f.startsWith('42["jetsocket:connection_established"'), 5000, 'connection_established');
    raw.send('421["jetsocket:subscribe",{"channel":"private-user-exp-1"}]');
    const first = JSON.parse((await raw.next((f) => f.startsWith('431['), 5000, 'first subscribe ack')).slice(3))[0];
    assert.equal(first.ok, true, `before expiry the subscribe works: ${JSON.stringify(first)}`);

    while (Date.now() < exp * 1000 - 600) await sleep(50);
    const deadline = exp * 1000 + 10_000;
    let id = 100;
    while (!raw.isClosed && Date.now() < deadline) {
      const channel = id % 2 ? 'private-user-exp-1' : `public-exp-${id}`;
      raw.send(`42${id}${JSON.stringify(['jetsocket:subscribe', { channel }])}`);
      id += 1;
      await sleep(100);
    }
    assert.ok(raw.isClosed, 'the connection is closed within 10 s after exp');

    const frames = raw.frames;
    const expiredAt = frames.findIndex((f) => f.startsWith('42["jetsocket:token_expired"'));
    const acks = frames.map((f, i) => ({ i, m: /^43(\d+)(\[.*)$/s.exec(f) }))
      .filter(({ m }) => m && Number(m[1]) >= 100)
      .map(({ i, m }) => ({ i, id: Number(m[1]), ack: JSON.parse(m[2])[0] }));
    for (const { id: n, ack } of acks.filter(({ ack }) => !ack.ok)) {
      assert.deepEqual([ack.status, ack.code], [401, 'token_expired'], `subscribe ${n} refused for expiry: ${JSON.stringify(ack)}`);
    }
    const refused = acks.filter(({ ack }) => !ack.ok).length;
    assert.ok(expiredAt >= 0 || refused > 0,
      `after expiry the server says so (jetsocket:token_expired or 401); frames: ${JSON.stringify(frames).slice(0, 600)}`);
    if (expiredAt >= 0) {
      const [, payload] = JSON.parse(frames[expiredAt].slice(2));
      assert.equal(Date.parse(payload.expired_at), exp * 1000, `expired_at: ${JSON.stringify(payload)}`);
      const late = acks.filter(({ i, ack }) => i > expiredAt && ack.ok);
      assert.deepEqual(late, [], 'no subscription succeeds after jetsocket:token_expired');
    }
    // No success after the first refusal either.
    const firstRefusal = acks.findIndex(({ ack }) => !ack.ok);
    if (firstRefusal >= 0) {
      assert.deepEqual(acks.slice(firstRefusal).filter(({ ack }) => ack.ok), [], 'no success after a 401');
    }
  });
});

describe('CHANNEL_ROLES is checked at start-up', () => {
  const bad = ['private-admin-*', 'private-admin-*=', 'bad name*=admin', '=admin'];
  for (const value of bad) {
    test(`CHANNEL_ROLES=${JSON.stringify(value)} stops start-up with a config error`, async () => {
      const { code, signal, output } = await runServerExpectingExit({ CHANNEL_ROLES: value });
      assert.equal(signal, null, `exited by itself, not killed:\n${output}`);
      assert.notEqual(code, 0, `non-zero exit:\n${output}`);
      assert.match(output, /config: CHANNEL_ROLES/, output);
    });
  }

  test('a good CHANNEL_ROLES with spaces and several rules starts', async () => {
    const srv = await startServer({ CHANNEL_ROLES: ' private-a-* = admin , moderator ; private-b-*=user ' });
    const clients = new Clients();
    try {
      const { socket: mod } = await join(srv.url, clients, 'sp-mod', { role: 'moderator' });
      await subscribeOk(mod, 'private-a-x');
      await subscribeFails(mod, 'private-b-x', 403, 'forbidden');
    } finally {
      clients.closeAll();
      await srv.stop();
    }
  });
});
