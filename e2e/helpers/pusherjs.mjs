// Helpers for the Pusher protocol endpoint (PRODUCT §15): pusher-js pointed at a test
// server, the server's own /pusher/auth as its authorizer, and a raw protocol-7 client
// (the `ws` package) for what pusher-js will not send: bad JSON, floods, silence.
import WebSocket from 'ws';
import Pusher from 'pusher-js';
import { APP } from './pusher.mjs';
import { withTimeout } from './clients.mjs';

export { Pusher };

/**
 * pusherJs returns a pusher-js client for `srv`, configured as docs/pusher.md tells
 * browser users to (wsHost, wsPort, forceTLS false, ws only, cluster ''); `token`, when
 * given, authorizes channels and sign-ins through the server's /pusher/auth and
 * /pusher/user-auth with a Bearer header. `clients` tracks it for cleanup.
 */
export function pusherJs(srv, { token, clients, PusherClass = Pusher, key = APP.key, ...opts } = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const p = new PusherClass(key, {
    wsHost: '127.0.0.1',
    wsPort: srv.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: '',
    disableStats: true,
    channelAuthorization: { endpoint: `${srv.url}/pusher/auth`, transport: 'ajax', headers },
    userAuthentication: { endpoint: `${srv.url}/pusher/user-auth`, transport: 'ajax', headers },
    ...opts,
  });
  clients?.add({ close: () => p.disconnect() });
  return p;
}

/** connected resolves with the socket id once `p` is connected. */
export function connected(p, ms = 10_000) {
  if (p.connection.state === 'connected') return Promise.resolve(p.connection.socket_id);
  return withTimeout(new Promise((resolve) => p.connection.bind('connected', () => resolve(p.connection.socket_id))), ms, 'pusher-js connected');
}

/**
 * subscribed subscribes `p` to `name` and resolves with the subscription_succeeded data,
 * or rejects with the subscription_error.
 */
export function subscribed(p, name, ms = 10_000) {
  const ch = p.subscribe(name);
  return withTimeout(new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', (data) => resolve({ ch, data }));
    ch.bind('pusher:subscription_error', (err) => reject(Object.assign(new Error(`subscription_error on ${name}: ${JSON.stringify(err)}`), { data: err })));
  }), ms, `subscription to ${name}`);
}

/** subscriptionError subscribes and resolves with the subscription_error's data. */
export function subscriptionError(p, name, ms = 10_000) {
  const ch = p.subscribe(name);
  return withTimeout(new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', () => reject(new Error(`${name} subscribed`)));
    ch.bind('pusher:subscription_error', resolve);
  }), ms, `subscription_error on ${name}`);
}

/** nextEvent resolves with the next `event` on channel `ch` as {data, metadata}. */
export function nextEvent(ch, event, ms = 10_000) {
  return withTimeout(new Promise((resolve) => {
    const fn = (data, metadata) => { ch.unbind(event, fn); resolve({ data, metadata }); };
    ch.bind(event, fn);
  }), ms, `${event} on ${ch.name}`);
}

/**
 * RawPusher is a protocol-7 client over a bare websocket: it records every message
 * (data parsed as pusher-js parses it) and the close {code, reason}.
 */
export class RawPusher {
  constructor(srv, { key = APP.key, query = 'protocol=7&client=raw&version=1' } = {}) {
    this.messages = [];
    this.waiters = [];
    this.ws = new WebSocket(`ws://127.0.0.1:${srv.port}/app/${key}?${query}`);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      if (typeof m.data === 'string') {
        try { m.data = JSON.parse(m.data); } catch { /* a plain string */ }
      }
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => !(w.pred(m) && (w.resolve(m), true)));
    });
  }

  /** send sends an object as JSON, or a string as it is. */
  send(msg) { this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)); }

  /** next resolves with the first message (already received or not) matching pred. */
  next(pred, ms = 10_000, what = 'message') {
    const seen = this.messages.find(pred);
    if (seen) {
      this.messages.splice(this.messages.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return withTimeout(new Promise((resolve) => {
      this.waiters.push({
        pred,
        resolve: (m) => { this.messages.splice(this.messages.indexOf(m), 1); resolve(m); },
      });
    }), ms, what);
  }

  /** event resolves with the next message of event `name` (and channel, if given). */
  event(name, channel, ms = 10_000) {
    return this.next((m) => m.event === name && (channel === undefined || m.channel === channel), ms, `${name}${channel ? ` on ${channel}` : ''}`);
  }

  /** established resolves with connection_established's data. */
  async established() { return (await this.event('pusher:connection_established')).data; }

  /** roundTrip sends pusher:ping and waits for the pong: everything sent before it was handled. */
  async roundTrip() {
    this.send({ event: 'pusher:ping', data: {} });
    await this.event('pusher:pong');
  }

  close() { this.ws.terminate(); }
}
