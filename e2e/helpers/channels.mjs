// Channel helpers for the end-to-end tests of PRODUCT §4-§5: subscribe/unsubscribe with acks,
// event recorders, bounded waits and an ordering barrier for "nothing else arrived" checks.
import assert from 'node:assert/strict';
import { mint } from './jwt.mjs';
import { connect, ping, sleep, withTimeout } from './clients.mjs';

export const SUBSCRIBED = 'jetsocket:subscription_succeeded';
export const SUB_ERROR = 'jetsocket:subscription_error';
export const MEMBER_ADDED = 'jetsocket:member_added';
export const MEMBER_REMOVED = 'jetsocket:member_removed';
export const ERROR = 'jetsocket:error';

/**
 * user builds claims for a plain user: no admin role, no groups, no permissions, unless
 * `extra` says otherwise (keys set to undefined are dropped by mint()).
 */
export function userClaims(sub, extra = {}) {
  return { sub, name: `User ${sub}`, role: 'user', groups: [], permissions: [], ...extra };
}

/**
 * join connects a user over websocket only (the default polling->websocket path is covered
 * where a test says so) and resolves {socket, info, sub}.
 */
export async function join(url, clients, sub, extra = {}, opts = {}) {
  const token = mint(userClaims(sub, extra));
  const { socket, info } = await connect(url, token, { clients, transports: ['websocket'], ...opts });
  return { socket, info, sub };
}

/** emitAck emits `event` with `payload` and resolves with the ack's first argument. */
export function emitAck(socket, event, payload, ms = 5000) {
  return withTimeout(new Promise((resolve) => socket.emit(event, payload, resolve)), ms, `ack of ${event}`);
}

/**
 * subscribe emits jetsocket:subscribe {channel} and resolves {ack, event}: the ack and the
 * subscription_succeeded/_error event for the same channel (the first one of either kind
 * that names the channel). `request` is the channel name, or the whole payload
 * ({channel, auth, channel_data} for a delegated authorization).
 */
export async function subscribe(socket, request, ms = 5000) {
  const payload = typeof request === 'string' ? { channel: request } : request;
  const channel = payload.channel;
  const eventP = withTimeout(new Promise((resolve) => {
    const onOk = (p) => { if (p?.channel === channel) { off(); resolve({ name: SUBSCRIBED, payload: p }); } };
    const onErr = (p) => { if (p?.channel === channel) { off(); resolve({ name: SUB_ERROR, payload: p }); } };
    function off() { socket.off(SUBSCRIBED, onOk); socket.off(SUB_ERROR, onErr); }
    socket.on(SUBSCRIBED, onOk);
    socket.on(SUB_ERROR, onErr);
  }), ms, `subscription event for ${channel}`);
  const ack = await emitAck(socket, 'jetsocket:subscribe', payload, ms);
  const event = await eventP;
  return { ack, event };
}

const channelOf = (request) => (typeof request === 'string' ? request : request.channel);

/** subscribeOk subscribes and asserts success (ack and event); resolves with the ack. */
export async function subscribeOk(socket, request, ms = 5000) {
  const channel = channelOf(request);
  const { ack, event } = await subscribe(socket, request, ms);
  assert.equal(ack?.ok, true, `subscribe ${channel}: ack ${JSON.stringify(ack)}`);
  assert.equal(ack.channel, channel, `subscribe ${channel}: ack channel`);
  assert.equal(event.name, SUBSCRIBED, `subscribe ${channel}: event ${event.name} ${JSON.stringify(event.payload)}`);
  assert.deepEqual(event.payload, ack, `subscribe ${channel}: subscription_succeeded carries the ack`);
  return ack;
}

/**
 * subscribeFails subscribes, asserts the refusal (ack and subscription_error with the same
 * channel, status and code, and a non-empty error text); resolves with the ack.
 */
export async function subscribeFails(socket, request, status, code, ms = 5000) {
  const channel = channelOf(request);
  const { ack, event } = await subscribe(socket, request, ms);
  const what = `subscribe ${JSON.stringify(channel).slice(0, 80)}: ack ${JSON.stringify(ack)}`;
  assert.equal(ack?.ok, false, what);
  assert.equal(ack.channel, channel, `${what}: channel`);
  assert.equal(ack.status, status, `${what}: status`);
  if (code !== undefined) assert.equal(ack.code, code, `${what}: code`);
  assert.equal(typeof ack.error, 'string', `${what}: error text`);
  assert.ok(ack.error.length > 0, `${what}: error text`);
  assert.equal(event.name, SUB_ERROR, `${what}: event ${event.name} ${JSON.stringify(event.payload)}`);
  assert.deepEqual(event.payload, { channel, status: ack.status, code: ack.code, error: ack.error },
    `${what}: subscription_error payload`);
  return ack;
}

/** unsubscribe emits jetsocket:unsubscribe and asserts the ack {ok:true, channel}. */
export async function unsubscribe(socket, channel, ms = 5000) {
  const ack = await emitAck(socket, 'jetsocket:unsubscribe', { channel }, ms);
  assert.deepEqual(ack, { ok: true, channel }, `unsubscribe ${channel}`);
  return ack;
}

/** record collects every payload of `event` on `socket` into an array (until stop()). */
export function record(socket, event) {
  const got = [];
  const fn = (p) => got.push(p);
  socket.on(event, fn);
  Object.defineProperty(got, 'stop', { value: () => socket.off(event, fn), enumerable: false });
  return got;
}

/** waitUntil polls `cond` (sync or async) every 20 ms until it is truthy, or fails after `ms` with `what`. */
export async function waitUntil(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(20);
  }
}

/**
 * waitForMatch resolves with the next payload of `event` for which `pred` holds (payloads
 * already in `rec`, a record() array, count too).
 */
export async function waitForMatch(rec, pred, ms, what) {
  return waitUntil(() => rec.find(pred), ms, () => `${what}; got ${JSON.stringify(rec).slice(0, 500)}`);
}

/**
 * flush is an ordering barrier: a ping round-trip on `socket`. On one node every frame the
 * server queued for this connection before it handled the ping arrives before the pong, so
 * after flush(), "nothing arrived" means nothing was sent for whatever was acked before.
 */
export async function flush(...sockets) {
  for (const s of sockets) {
    const ack = await ping(s, 5000);
    assert.equal(ack?.pong, true, 'flush ping');
  }
}

/** clientEvent emits `client-<name>` with an ack; resolves with the ack. */
export function clientEvent(socket, name, channel, data, ms = 5000) {
  return emitAck(socket, name, { channel, data }, ms);
}

/** onceDisconnected resolves with the disconnect reason (or at once if already disconnected). */
export function disconnected(socket, ms = 10_000) {
  if (socket.disconnected) return Promise.resolve('already');
  return withTimeout(new Promise((resolve) => socket.once('disconnect', resolve)), ms, 'disconnect');
}
