// Client helpers for end-to-end tests: socket.io-client (2.x or 4.x, chosen once per run by
// CLIENT_MAJOR), raw HTTP with full header control, raw websockets and a minimal Engine.IO v3
// speaker for garbage tests. Every wait has a timeout, so no test can hang on a server that
// never answers.
import http from 'node:http';
import io2 from 'socket.io-client';
import { io as io4 } from 'socket.io-client-4';
import WebSocket from 'ws';

/**
 * CLIENT_MAJOR is the socket.io-client major every suite drives: 2 (2.5, Engine.IO v3, the
 * default) or 4 (4.8, Engine.IO v4 + socket.io protocol v5). scripts/test.sh runs the suites
 * once per major, so one suite body covers both generations.
 */
export const CLIENT_MAJOR = parseMajor(process.env.CLIENT_MAJOR);

/**
 * TOKEN_IN is where openSocket puts the token: `query` (the only way for 2.x) or `auth`
 * (4.x's `auth: {token}`, checked at CONNECT). 4.x defaults to `auth`, the way a 4.x user
 * passes it; CLIENT_TOKEN_IN=query runs the 4.x leg with query tokens instead.
 */
export const TOKEN_IN = parseTokenIn(process.env.CLIENT_TOKEN_IN, CLIENT_MAJOR);

/** CLIENT_LABEL names the client in test titles and messages, e.g. `socket.io-client 4.x`. */
export const CLIENT_LABEL = `socket.io-client ${CLIENT_MAJOR}.x`;

function parseMajor(v) {
  if (v === undefined || v === '' || v === '2') return 2;
  if (v === '4') return 4;
  throw new Error(`CLIENT_MAJOR must be 2 or 4, got ${JSON.stringify(v)}`);
}

function parseTokenIn(v, major) {
  if (v === undefined || v === '') return major === 4 ? 'auth' : 'query';
  if (v === 'query' || (v === 'auth' && major === 4)) return v;
  throw new Error(`CLIENT_TOKEN_IN must be query${major === 4 ? ' or auth' : ' with CLIENT_MAJOR=2'}, got ${JSON.stringify(v)}`);
}

/** ioFor returns major's io(url, opts); both take forceNew, reconnection, query, transports. */
export const ioFor = (major) => (major === 4 ? io4 : io2);

/** io is CLIENT_MAJOR's io(). */
export const io = ioFor(CLIENT_MAJOR);

/**
 * refusalStatus reads the HTTP-like status out of a `connect_error`, whatever the client
 * major and the way the token went: 2.x puts the handshake's status in `description`
 * (a number on polling, an Error whose message names it on a websocket); 4.x does the same
 * for a query token refused by HTTP, and a CONNECT_ERROR carries it as `data.status`.
 * Undefined when the error names no status.
 */
export function refusalStatus(err) {
  if (typeof err?.data?.status === 'number') return err.data.status;
  const d = err?.description;
  if (typeof d === 'number') return d;
  const m = /\b([1-5]\d\d)\b/.exec(String(d?.message ?? d ?? ''));
  return m ? Number(m[1]) : undefined;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** withTimeout rejects with `what` when `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** waitFor resolves with the first argument of the next `event` on `emitter`. */
export function waitFor(emitter, event, ms = 5000) {
  return withTimeout(new Promise((resolve) => emitter.once(event, resolve)), ms, `event ${event}`);
}

/**
 * Clients collects everything a test opens so `after` can close it all, whatever failed.
 * Sockets, raw websockets and anything else with close() are accepted.
 */
export class Clients {
  constructor() { this.items = new Set(); }
  add(x) { this.items.add(x); return x; }
  closeAll() {
    for (const x of this.items) {
      try { if (typeof x.terminate === 'function') x.terminate(); else x.close(); } catch { /* already closed */ }
    }
    this.items.clear();
  }
}

/**
 * openSocket starts a socket.io-client connection of CLIENT_MAJOR (or `opts.major`, for
 * suites that mix generations) with the token in the handshake query or, for 4.x, in
 * `auth` (TOKEN_IN; `opts.tokenIn` overrides it per call).
 * forceNew gives each call its own engine; reconnection is off so a dropped connection shows
 * up as a `disconnect` instead of being silently redialled. Transports stay at the client
 * default (polling, then upgrade to websocket) unless `opts.transports` says otherwise.
 */
export function openSocket(url, token, { major = CLIENT_MAJOR, tokenIn, ...opts } = {}) {
  tokenIn ??= major === CLIENT_MAJOR ? TOKEN_IN : parseTokenIn(undefined, major);
  if (tokenIn === 'auth' && major !== 4) throw new Error('auth tokens need socket.io-client 4.x');
  const tokenOpts = token === undefined ? {} : tokenIn === 'auth' ? { auth: { token } } : { query: { token } };
  return ioFor(major)(url, { forceNew: true, reconnection: false, timeout: 10_000, ...tokenOpts, ...opts });
}

/**
 * connect resolves {socket, info} once the server emits `jetsocket:connection_established`,
 * rejects with the error on `connect_error`/`error`/`disconnect`, or after `timeoutMs`.
 * The socket is closed when connecting fails; `clients` (optional) tracks it for cleanup.
 */
export function connect(url, token, { timeoutMs = 10_000, clients, ...opts } = {}) {
  const socket = openSocket(url, token, opts);
  if (clients) clients.add(socket);
  return new Promise((resolve, reject) => {
    const listeners = {
      connect_error: (err) => fail(err),
      connect_timeout: () => fail(new Error('connect_timeout')),
      error: (err) => fail(err),
      disconnect: (reason) => fail(new Error(`disconnected (${reason}) before jetsocket:connection_established`)),
    };
    const stopListening = () => {
      clearTimeout(timer);
      for (const [ev, fn] of Object.entries(listeners)) socket.off(ev, fn);
    };
    function fail(err) {
      stopListening();
      socket.close();
      reject(err instanceof Error ? err : Object.assign(new Error(String(err)), { data: err }));
    }
    const timer = setTimeout(
      () => fail(new Error(`no jetsocket:connection_established within ${timeoutMs} ms`)),
      timeoutMs,
    );
    for (const [ev, fn] of Object.entries(listeners)) socket.on(ev, fn);
    socket.once('jetsocket:connection_established', (info) => {
      stopListening();
      resolve({ socket, info });
    });
  });
}

/**
 * expectRefused resolves with the connect_error a refused handshake produces; it rejects if
 * the connection is accepted instead (or nothing happens within `timeoutMs`).
 */
export function expectRefused(url, token, { timeoutMs = 10_000, ...opts } = {}) {
  const socket = openSocket(url, token, opts);
  return new Promise((resolve, reject) => {
    const done = (fn, v) => { clearTimeout(timer); socket.close(); fn(v); };
    const timer = setTimeout(() => done(reject, new Error('neither refused nor accepted in time')), timeoutMs);
    socket.once('connect_error', (err) => done(resolve, err));
    socket.once('connect', () => done(reject, new Error('handshake was accepted (connect)')));
    socket.once('jetsocket:connection_established', () =>
      done(reject, new Error('handshake was accepted (connection_established)')));
  });
}

/** ping does a `jetsocket:ping` ack round-trip and resolves with the ack payload. */
export function ping(socket, ms = 5000) {
  return withTimeout(new Promise((resolve) => socket.emit('jetsocket:ping', resolve)), ms, 'jetsocket:ping ack');
}

/**
 * request sends one HTTP request with exactly the given headers (Origin, Host, ...) and
 * resolves {status, headers, text, json}; json is null when the body is not JSON.
 */
export function request(url, { method = 'GET', headers = {}, body, localAddress, timeoutMs = 10_000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  }), timeoutMs, `${method} ${url}`);
}

/**
 * wsHandshake opens a raw websocket. Resolves {ws, early, stopKeeping} when the upgrade
 * succeeds (`early` collects text frames until stopKeeping() is called), or
 * {status, headers, text, json} when the server answers the upgrade request with a plain
 * HTTP response (e.g. 401). Rejects on network errors or timeout.
 */
export function wsHandshake(url, { headers = {}, origin, timeoutMs = 10_000, maxPayload } = {}) {
  const ws = new WebSocket(url, { headers, origin, maxPayload });
  // Frames can arrive in the same read as the upgrade answer, before the caller gets `ws`.
  const early = [];
  const keep = (data) => early.push(data.toString());
  ws.on('message', keep);
  return withTimeout(new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, early, stopKeeping: () => ws.off('message', keep) }));
    ws.once('unexpected-response', (req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    ws.once('error', reject);
  }), timeoutMs, `websocket ${url}`).catch((err) => { ws.terminate(); throw err; });
}

/** socketPath builds the socket.io handshake URL on `base` (http or ws scheme). */
export function socketPath(base, { transport = 'polling', token, extra = {} } = {}) {
  const u = new URL('/socket.io/', base);
  if (transport === 'websocket') u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.searchParams.set('EIO', '3');
  u.searchParams.set('transport', transport);
  if (token !== undefined) u.searchParams.set('token', token);
  for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
  return u.toString();
}

/**
 * RawEio speaks Engine.IO v3 over a raw websocket, frame by frame, so tests can send packets
 * no well-behaved client would. Incoming text frames queue up in `frames`.
 */
export class RawEio {
  static async open(base, token, opts = {}) {
    const res = await wsHandshake(socketPath(base, { transport: 'websocket', token }), opts);
    if (!res.ws) throw new Error(`raw websocket refused: ${res.status} ${res.text}`);
    res.stopKeeping();
    return new RawEio(res.ws, res.early);
  }

  constructor(ws, early = []) {
    this.ws = ws;
    this.frames = [...early];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    this.isClosed = false;
    ws.on('close', () => { this.isClosed = true; this.#wake(); });
    ws.on('error', () => { /* surfaced through close */ });
    ws.on('message', (data) => { this.frames.push(data.toString()); this.#wake(); });
  }

  #wake() { for (const w of this.waiters.splice(0)) w(); }

  /** next resolves with (and removes) the first queued frame matching `pred`. */
  async next(pred = () => true, ms = 5000, what = 'frame') {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.isClosed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames)}`);
      await withTimeout(new Promise((r) => this.waiters.push(r)), left, what).catch(() => {});
    }
  }

  send(frame) { if (!this.isClosed) this.ws.send(frame); }
  close() { this.ws.terminate(); }
  terminate() { this.ws.terminate(); }
}
