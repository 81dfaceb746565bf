/*!
 * Jetsocket JS client: Pusher's client model (connection states, channels, presence,
 * encrypted channels, delegated authorization) over a Jetsocket server's socket.io endpoint.
 * One file, no build step. Browser: <script src="/js/jetsocket.js"> gives `Jetsocket`
 * (socket.io-client 2.x as `io` and, for encrypted channels, tweetnacl as `nacl` loaded
 * first). Node: require or import it; socket.io-client and tweetnacl are required from
 * node_modules unless passed as options.io and options.nacl.
 */
(function (root, factory) {
  if (typeof define === 'function' && define.amd) define([], factory);
  else if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.Jetsocket = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var globalScope = typeof globalThis !== 'undefined' ? globalThis
    : typeof self !== 'undefined' ? self : typeof window !== 'undefined' ? window : {};

  // Defaults; every one can be overridden in the options.
  var DEFAULTS = {
    path: '/socket.io',
    connectTimeoutMs: 10000, // no connection_established by then: the attempt failed
    ackTimeoutMs: 10000,     // an emit with an ack that gets no answer by then rejects
    retryMinMs: 1000,        // first wait after a failed attempt; doubles up to retryMaxMs
    retryMaxMs: 30000,
    refreshMarginMs: 60000,  // refresh the token this long before it expires (at most a quarter of its life)
    minRefreshIntervalMs: 10000, // never ask the token function for a refresh more often than this
    stableAfterMs: 30000,    // a connection up this long is stable: the reconnect backoff starts over
  };

  // MAX_TIMER_MS is the longest setTimeout delay (2^31-1 ms, about 24.8 days); a longer
  // one fires at once. Longer waits are made of several.
  var MAX_TIMER_MS = 2147483647;

  // ------------------------------------------------------------------ small helpers

  function optionalRequire(name) {
    try {
      // eslint-disable-next-line no-undef
      return typeof require === 'function' ? require(name) : null;
    } catch (e) {
      return null;
    }
  }

  function base64ToBytes(s) {
    var bin = typeof atob === 'function' ? atob(s) : Buffer.from(s, 'base64').toString('binary');
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function base64UrlToText(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    return utf8Decode(base64ToBytes(s));
  }

  function utf8Decode(bytes) {
    if (typeof TextDecoder === 'function') return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return Buffer.from(bytes).toString('utf8');
  }

  // tokenExpiry returns the JWT's exp in milliseconds, or 0 when it has none or is not a JWT.
  function tokenExpiry(token) {
    try {
      var payload = JSON.parse(base64UrlToText(String(token).split('.')[1]));
      return typeof payload.exp === 'number' ? payload.exp * 1000 : 0;
    } catch (e) {
      return 0;
    }
  }

  function isPrivate(name) { return name.indexOf('private-') === 0; }
  function isPresence(name) { return name.indexOf('presence-') === 0; }
  function isEncrypted(name) { return name.indexOf('private-encrypted-') === 0; }
  function needsAuth(name) { return isPrivate(name) || isPresence(name); }

  // isPosition: {epoch: string, offset: number}, as publications and acks carry it.
  function isPosition(p) {
    return !!p && typeof p.epoch === 'string' && typeof p.offset === 'number' && p.offset >= 0;
  }

  function errorOf(type, status, code, message) {
    return { type: type, status: status, code: code, error: message };
  }

  // dict is a map keyed by names that come from the app or the server (channels, events,
  // user ids): without a prototype, "__proto__" or "constructor" is a key like any other,
  // not Object.prototype's (which a plain {} would hand out, or let a member id replace).
  function dict() { return Object.create(null); }

  // ------------------------------------------------------------------ dispatcher

  // Dispatcher keeps callbacks per event name and global ones (which get the name first).
  // A callback that throws is reported on the console and never stops the others.
  function Dispatcher() {
    this.callbacks = dict();
    this.globals = [];
  }
  Dispatcher.prototype.bind = function (event, callback, context) {
    (this.callbacks[event] = this.callbacks[event] || []).push({ fn: callback, context: context });
    return this;
  };
  Dispatcher.prototype.unbind = function (event, callback) {
    if (event === undefined || event === null) {
      if (!callback) { this.callbacks = dict(); return this; }
      for (var e in this.callbacks) this.unbind(e, callback);
      return this;
    }
    if (!callback) { delete this.callbacks[event]; return this; }
    var list = (this.callbacks[event] || []).filter(function (c) { return c.fn !== callback; });
    if (list.length) this.callbacks[event] = list; else delete this.callbacks[event];
    return this;
  };
  Dispatcher.prototype.bind_global = function (callback) { this.globals.push(callback); };
  Dispatcher.prototype.unbind_global = function (callback) {
    this.globals = callback ? this.globals.filter(function (c) { return c !== callback; }) : [];
  };
  Dispatcher.prototype.emit = function (event, data, metadata) {
    var i;
    var globals = this.globals.slice();
    for (i = 0; i < globals.length; i++) safeCall(globals[i], null, [event, data, metadata]);
    var list = (this.callbacks[event] || []).slice();
    for (i = 0; i < list.length; i++) safeCall(list[i].fn, list[i].context, [data, metadata]);
  };
  function safeCall(fn, context, args) {
    try {
      fn.apply(context || globalScope, args);
    } catch (e) {
      if (typeof console !== 'undefined') console.error('Jetsocket: callback failed', e);
    }
  }

  // ------------------------------------------------------------------ transport

  // The transports are the only code that knows socket.io-client: how a handshake carries
  // the token, how a refused handshake reports its status, how to see every incoming event.
  // socketIO4Transport (socket.io-client 3.x/4.x, the default) and socketIO2Transport
  // (2.x) differ in exactly those three; pickTransport chooses by the io() it is given.
  //
  // open(token, handlers) starts one connection attempt; handlers: event(name, payload),
  // refused(status, error) before the connection is up, closed(reason) after it was up.
  // Reconnection is ours (reconnection: false): socket.io-client 2.x would keep the first
  // query, and so the first token, for every reconnect.
  // newAttempt is what both transports share for one attempt: it ends once (end reports
  // whether this call ended it), a disconnect after it was up is reported as closed, and
  // handle is what the client drives.
  function newAttempt(socket, handlers) {
    var a = {
      ended: false,
      end: function () {
        if (a.ended) return false;
        a.ended = true;
        socket.close();
        return true;
      },
      handle: {
        emit: function (name, payload, ack) {
          var args = [name];
          if (payload !== undefined) args.push(payload);
          if (ack) args.push(ack);
          socket.emit.apply(socket, args);
        },
        close: function () {
          a.ended = true;
          socket.close();
        },
        name: function () {
          var engine = socket.io && socket.io.engine;
          return engine && engine.transport ? engine.transport.name : '';
        },
      },
    };
    socket.on('disconnect', function (reason) {
      if (a.end()) handlers.closed(reason);
    });
    return a;
  }

  function socketIO2Transport(io, url, options) {
    return function open(token, handlers) {
      var socket = io(url, {
        path: options.path,
        transports: options.transports,
        query: { token: token },
        forceNew: true,
        reconnection: false,
        timeout: options.connectTimeoutMs,
      });
      var attempt = newAttempt(socket, handlers);
      var up = false;
      var original = socket.onevent;
      socket.onevent = function (packet) {
        var args = packet.data || [];
        if (!attempt.ended) handlers.event(String(args[0]), args[1]);
        if (original) return original.call(this, packet);
      };
      socket.on('connect', function () { up = true; });
      function refused(err) {
        if (attempt.end()) handlers.refused(handshakeStatus(err), err);
      }
      socket.on('connect_error', refused);
      socket.on('connect_timeout', function () { refused(new Error('connect timeout')); });
      socket.on('error', function (err) { if (!up) refused(err); });
      return attempt.handle;
    };
  }

  // socketIO4Transport is the same for socket.io-client 3.x/4.x (Engine.IO v4): the token
  // goes in `auth`, checked when the CONNECT packet arrives, and a refusal comes back as a
  // connect_error whose data is {status: 401, reason}; events are seen with onAny.
  // Reconnection stays ours, so every attempt sends the token current at that moment.
  function socketIO4Transport(io, url, options) {
    return function open(token, handlers) {
      var socket = io(url, {
        path: options.path,
        transports: options.transports,
        auth: { token: token },
        forceNew: true,
        reconnection: false,
        timeout: options.connectTimeoutMs,
      });
      var attempt = newAttempt(socket, handlers);
      socket.onAny(function (name, payload) {
        if (!attempt.ended) handlers.event(String(name), payload);
      });
      socket.on('connect_error', function (err) {
        if (attempt.end()) handlers.refused(connectErrorStatus(err), err);
      });
      return attempt.handle;
    };
  }

  // isSocketIO4 tells a socket.io-client 3.x/4.x io() from a 2.x one: only 3.x+ sockets
  // have onAny.
  function isSocketIO4(io) {
    return !!(io && io.Socket && io.Socket.prototype && typeof io.Socket.prototype.onAny === 'function');
  }

  // pickTransport: 4.x's transport for a 3.x/4.x io(), 2.x's otherwise.
  function pickTransport(io, url, options) {
    return isSocketIO4(io) ? socketIO4Transport(io, url, options) : socketIO2Transport(io, url, options);
  }

  // connectErrorStatus reads a 4.x connect_error: a CONNECT_ERROR carries data.status; a
  // handshake refused by HTTP (a query token, an origin, a limit) reads as in 2.x.
  function connectErrorStatus(err) {
    if (err && err.data && typeof err.data.status === 'number') return err.data.status;
    return handshakeStatus(err);
  }

  // handshakeStatus digs the HTTP status out of a socket.io-client 2.x connect_error:
  // polling reports it as a number in err.description, Node's ws in the message of
  // err.description; browsers do not expose a websocket handshake's status (0).
  function handshakeStatus(err) {
    var d = err && err.description;
    if (typeof d === 'number') return d;
    var m = /Unexpected server response: (\d+)/.exec((d && d.message) || (err && err.message) || '');
    return m ? Number(m[1]) : 0;
  }

  // ------------------------------------------------------------------ connection

  var STATES = ['initialized', 'connecting', 'connected', 'unavailable', 'failed', 'disconnected'];

  // Connection is the state machine: initialized -> connecting -> connected; a lost
  // connection goes back to connecting, a failed attempt to unavailable (retried with
  // backoff), a refused token (twice) to failed, disconnect() to disconnected.
  function Connection(client, options, openTransport) {
    this.state = 'initialized';
    this.socket_id = null;
    this.user_id = null;
    this.reason = null; // why the last attempt failed, or why the state is failed
    this.client = client;
    this.options = options;
    this.openTransport = openTransport;
    this.dispatcher = new Dispatcher();
    this.transport = null;
    this.token = null;
    this.attempt = 0; // bumped on every attempt and stop: late callbacks of older ones are ignored
    this.failures = 0;
    this.authRetried = false;
    this.timers = {};
  }
  Connection.prototype.bind = function (e, cb, ctx) { this.dispatcher.bind(e, cb, ctx); return this; };
  Connection.prototype.unbind = function (e, cb) { this.dispatcher.unbind(e, cb); return this; };
  Connection.prototype.bind_global = function (cb) { this.dispatcher.bind_global(cb); return this; };
  Connection.prototype.unbind_global = function (cb) { this.dispatcher.unbind_global(cb); return this; };

  Connection.prototype.setState = function (next, data) {
    var previous = this.state;
    if (previous === next) return;
    this.state = next;
    this.dispatcher.emit('state_change', { previous: previous, current: next });
    this.dispatcher.emit(next, data);
  };

  Connection.prototype.connect = function () {
    if (this.state === 'connecting' || this.state === 'connected' || this.state === 'unavailable') return;
    this.failures = 0;
    this.authRetried = false;
    this.reason = null;
    this.setState('connecting');
    this.startAttempt();
  };

  Connection.prototype.disconnect = function () {
    this.stop('disconnected', null);
  };

  // stop ends every attempt and timer and settles in `state` (disconnected or failed).
  Connection.prototype.stop = function (state, reason) {
    var wasConnected = this.state === 'connected';
    this.attempt++;
    this.clearTimers();
    if (this.transport) { this.transport.close(); this.transport = null; }
    this.socket_id = null;
    if (wasConnected) this.client.onDisconnected();
    if (reason) {
      this.reason = reason;
      this.dispatcher.emit('error', reason);
    }
    this.setState(state, reason || undefined);
  };

  Connection.prototype.clearTimers = function () {
    for (var k in this.timers) clearTimeout(this.timers[k]);
    this.timers = {};
  };

  Connection.prototype.later = function (name, ms, fn) {
    this.until(name, Date.now() + (ms > 0 ? ms : 0), fn); // NaN and negatives: now
  };

  // until runs fn at the time due (ms since the epoch), in steps setTimeout can take,
  // each measured against the clock, so that a late step does not delay the rest.
  Connection.prototype.until = function (name, due, fn) {
    clearTimeout(this.timers[name]);
    var self = this;
    var wait = Math.max(0, due - Date.now());
    this.timers[name] = setTimeout(function () {
      delete self.timers[name];
      if (wait > MAX_TIMER_MS) self.until(name, due, fn); else fn();
    }, Math.min(wait, MAX_TIMER_MS));
  };

  // fetchToken calls the token option (string or sync/async function) for this attempt.
  Connection.prototype.fetchToken = function () {
    var t = this.options.token;
    try {
      return Promise.resolve(typeof t === 'function' ? t() : t);
    } catch (e) {
      return Promise.reject(e);
    }
  };

  Connection.prototype.startAttempt = function () {
    var self = this;
    var attempt = ++this.attempt;
    this.later('connect', this.options.connectTimeoutMs, function () {
      if (attempt !== self.attempt) return;
      self.attemptFailed(errorOf('TimeoutError', 0, 'timeout', 'no connection within ' + self.options.connectTimeoutMs + ' ms'));
    });
    this.fetchToken().then(function (token) {
      if (attempt !== self.attempt) return;
      if (typeof token !== 'string' || !token) throw new Error('the token option gave no token');
      self.token = token;
      self.transport = self.openTransport(token, {
        event: function (name, payload) { if (attempt === self.attempt) self.onEvent(name, payload); },
        refused: function (status, err) { if (attempt === self.attempt) self.onRefused(status, err); },
        closed: function (reason) { if (attempt === self.attempt) self.onClosed(reason); },
      });
    }).catch(function (err) {
      if (attempt !== self.attempt) return;
      self.attemptFailed(errorOf('TokenError', 0, 'token_unavailable', 'the token option failed: ' + (err && err.message || err)));
    });
  };

  Connection.prototype.onEvent = function (name, payload) {
    if (name === 'jetsocket:connection_established') {
      clearTimeout(this.timers.connect);
      this.failures = 0;
      this.authRetried = false;
      this.reason = null;
      this.socket_id = payload && payload.socket_id;
      this.user_id = payload && payload.user_id != null ? String(payload.user_id) : null;
      this.connectedAt = Date.now();
      this.tokenAt = 0; // the floor is between refreshes; this token was just fetched
      this.unrenewedReported = false;
      this.scheduleRefresh();
      this.setState('connected', payload);
      this.client.onConnected(payload);
      this.client.onEvent(name, payload);
      return;
    }
    if (name === 'jetsocket:terminated') {
      // terminate_connections: the server closes next; coming back would undo it.
      this.stop('disconnected', errorOf('TerminatedError', 0, (payload && payload.code) || 'terminated',
        (payload && payload.reason) || 'the server terminated the connection'));
      this.client.onEvent(name, payload);
      return;
    }
    this.client.onEvent(name, payload);
  };

  // onRefused: a handshake the server answered with an error. A 401 means the token was
  // refused: get a new one once (it may just have expired), then give up.
  Connection.prototype.onRefused = function (status, err) {
    this.transport = null;
    var message = (err && (err.message || err.description && err.description.message)) || String(err);
    if (status === 401) {
      if (!this.authRetried && typeof this.options.token === 'function') {
        this.authRetried = true;
        this.startAttempt();
        return;
      }
      this.stop('failed', errorOf('AuthError', 401, 'invalid_token', 'the server refused the token'));
      return;
    }
    this.attemptFailed(errorOf('TransportError', status, status === 429 ? 'too_many_connections' : 'transport_error', message));
  };

  Connection.prototype.onClosed = function (reason) {
    this.transport = null;
    if (this.state !== 'connected') {
      this.attemptFailed(errorOf('TransportError', 0, 'closed', 'closed before the connection was up: ' + reason));
      return;
    }
    this.clearTimers();
    this.socket_id = null;
    this.client.onDisconnected();
    this.setState('connecting');
    var self = this;
    var attempt = ++this.attempt;
    this.later('retry', this.dropDelay(), function () {
      if (attempt === self.attempt) self.startAttempt();
    });
  };

  // dropDelay is the wait before reconnecting after a connection was lost. The first
  // drop of a stable connection waits a short random time, so that clients dropped
  // together by a restart do not all come back at once; connections that keep dropping
  // soon after they are up (a server that accepts, then closes) back off exponentially
  // with jitter up to retryMaxMs, and start over once one stays up stableAfterMs.
  Connection.prototype.dropDelay = function () {
    if (Date.now() - (this.connectedAt || 0) >= this.options.stableAfterMs) this.drops = 0;
    var n = this.drops || 0;
    this.drops = n + 1;
    if (n === 0) return Math.random() * this.options.retryMinMs;
    var delay = Math.min(this.options.retryMaxMs, this.options.retryMinMs * Math.pow(2, n - 1));
    return delay / 2 + Math.random() * delay / 2;
  };

  Connection.prototype.attemptFailed = function (reason) {
    this.attempt++;
    this.clearTimers();
    if (this.transport) { this.transport.close(); this.transport = null; }
    this.reason = reason;
    this.dispatcher.emit('error', reason);
    this.setState('unavailable', reason);
    var delay = Math.min(this.options.retryMaxMs, this.options.retryMinMs * Math.pow(2, this.failures++));
    delay = delay / 2 + Math.random() * delay / 2;
    var self = this;
    var attempt = this.attempt;
    this.later('retry', delay, function () {
      if (attempt === self.attempt) self.startAttempt();
    });
  };

  // scheduleRefresh arms a timer that fetches a new token before this one expires and sends
  // it with jetsocket:refresh, so the server does not close the connection. The token
  // function is asked at most every minRefreshIntervalMs; a token that would not move the
  // expiry (the same one again) is not sent, and is reported once as token_not_renewed:
  // it is asked again after the interval while that is before the expiry, then the
  // server's expiry closes the connection and the reconnect asks for a token anew.
  Connection.prototype.scheduleRefresh = function () {
    var exp = tokenExpiry(this.token);
    if (!exp || typeof this.options.token !== 'function') return;
    var now = Date.now();
    var left = exp - now;
    var margin = Math.min(this.options.refreshMarginMs, Math.max(0, left / 4));
    var at = Math.max(exp - margin, (this.tokenAt || 0) + this.options.minRefreshIntervalMs);
    if (at >= exp) return; // no time for another try: let it expire
    var self = this;
    var attempt = this.attempt;
    this.later('refresh', at - now, function () {
      if (attempt !== self.attempt) return;
      self.tokenAt = Date.now();
      self.fetchToken().then(function (token) {
        if (attempt !== self.attempt) return null;
        var next = tokenExpiry(token);
        if (typeof token === 'string' && next && next <= tokenExpiry(self.token)) {
          if (!self.unrenewedReported) {
            self.unrenewedReported = true;
            self.dispatcher.emit('error', errorOf('RefreshError', 0, 'token_not_renewed',
              'the token function gave a token that expires no later than the current one'));
          }
          self.scheduleRefresh();
          return null;
        }
        return self.emitWithAck('jetsocket:refresh', { token: token }).then(function (ack) {
          if (attempt !== self.attempt) return;
          if (!ack || !ack.ok) throw Object.assign(new Error((ack && ack.error) || 'refresh refused'), { ack: ack });
          self.token = token;
          self.unrenewedReported = false;
          self.dispatcher.emit('token_refreshed', { expires_at: ack.expires_at });
          self.scheduleRefresh();
        });
      }).catch(function (err) {
        if (attempt !== self.attempt) return;
        // The server closes the connection at expiry; the reconnect fetches a token anew.
        var ack = err && err.ack;
        self.dispatcher.emit('error', errorOf('RefreshError', ack && ack.status || 0, ack && ack.code || 'refresh_failed', err && err.message || String(err)));
      });
    });
  };

  // emitWithAck sends an event on the current connection and resolves with the ack.
  // onAck, when given, sees the ack synchronously, before any packet that follows it in
  // the same transport payload: a subscribe's replay comes right behind its ack, and a
  // promise callback would only run after socket.io-client has dispatched it.
  Connection.prototype.emitWithAck = function (name, payload, onAck) {
    var transport = this.transport;
    var ms = this.options.ackTimeoutMs;
    if (!transport || this.state !== 'connected') return Promise.reject(new Error('Jetsocket: not connected'));
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(new Error('Jetsocket: no answer to ' + name + ' in ' + ms + ' ms')); }, ms);
      transport.emit(name, payload, function (ack) {
        clearTimeout(timer);
        if (onAck) {
          try {
            onAck(ack);
          } catch (e) {
            reject(e);
            return;
          }
        }
        resolve(ack);
      });
    });
  };

  Connection.prototype.send = function (name, payload) {
    if (this.transport && this.state === 'connected') this.transport.emit(name, payload);
  };

  // ping asks the server for a pong: {pong: true, time_ms}.
  Connection.prototype.ping = function () { return this.emitWithAck('jetsocket:ping', undefined); };

  // transportName is the socket.io transport in use ('polling' or 'websocket').
  Connection.prototype.transportName = function () { return this.transport ? this.transport.name() : ''; };

  // ------------------------------------------------------------------ presence members

  // Members is a presence channel's member list: {id: info}, with the current user as me.
  function Members() { this.reset(); }
  Members.prototype.reset = function () {
    this.members = dict();
    this.count = 0;
    this.myID = null;
    this.me = null;
  };
  Members.prototype.get = function (id) {
    id = String(id);
    return Object.prototype.hasOwnProperty.call(this.members, id) ? { id: id, info: this.members[id] } : null;
  };
  Members.prototype.each = function (fn) {
    for (var id in this.members) fn({ id: id, info: this.members[id] });
  };
  Members.prototype.setAll = function (presence, myID) {
    this.members = dict();
    var hash = (presence && presence.hash) || {};
    var ids = (presence && presence.ids) || Object.keys(hash);
    for (var i = 0; i < ids.length; i++) {
      var id = String(ids[i]);
      this.members[id] = (Object.prototype.hasOwnProperty.call(hash, id) && hash[id]) || {};
    }
    this.count = Object.keys(this.members).length;
    this.myID = myID;
    this.me = myID === null ? null : this.get(myID);
  };
  Members.prototype.add = function (id, info) {
    id = String(id);
    if (!Object.prototype.hasOwnProperty.call(this.members, id)) this.count++;
    this.members[id] = info || {};
    return this.get(id);
  };
  Members.prototype.remove = function (id) {
    var member = this.get(id);
    if (member) {
      delete this.members[member.id];
      this.count--;
    }
    return member;
  };

  // ------------------------------------------------------------------ channels

  // Channel is a subscription the client keeps across reconnects until unsubscribe().
  function Channel(client, name) {
    this.name = name;
    this.client = client;
    this.subscribed = false;
    this.subscriptionPending = false;
    this.dispatcher = new Dispatcher();
    this.members = isPresence(name) ? new Members() : undefined;
    this.key = null;       // the channel key of an encrypted channel (Uint8Array)
    this.rekeyed = false;  // a fresh key was asked for since the last payload that decrypted
    this.request = 0;      // bumped per subscribe request: late answers of older ones are ignored
    // History and recovery (PRODUCT.md §14): position is the last publication delivered,
    // {epoch, offset}, sent back as `since` on every re-subscribe; recovery is a replay
    // under way ({target, replayed}) until the ack's position has been delivered; gapAt is
    // the offset a gap re-subscribe started from (a second gap there is accepted, no loop);
    // own holds the offsets of this client's own client events, which it is not sent.
    this.position = null;
    this.recovery = null;
    this.gapAt = -1;
    this.own = null;
    // subscriptionCount is the latest pusher:subscription_count (SUBSCRIPTION_COUNT).
    this.subscriptionCount = null;
  }
  Channel.prototype.bind = function (e, cb, ctx) { this.dispatcher.bind(e, cb, ctx); return this; };
  Channel.prototype.unbind = function (e, cb) { this.dispatcher.unbind(e, cb); return this; };
  Channel.prototype.bind_global = function (cb) { this.dispatcher.bind_global(cb); return this; };
  Channel.prototype.unbind_global = function (cb) { this.dispatcher.unbind_global(cb); return this; };
  Channel.prototype.emit = function (event, data, metadata) { this.dispatcher.emit(event, data, metadata); };
  Channel.prototype.subscribe = function () { this.client.subscribe(this.name); return this; };
  Channel.prototype.unsubscribe = function () { this.client.unsubscribe(this.name); };

  // trigger sends a client event to the channel's other subscribers and resolves with the
  // server's ack ({ok:true} or {ok:false, status, code, error}). Only client-* events on
  // private and presence channels; encrypted and public channels throw.
  Channel.prototype.trigger = function (event, data) {
    if (String(event).indexOf('client-') !== 0) throw new Error("Jetsocket: client events must start with 'client-': " + event);
    if (isEncrypted(this.name)) throw new Error('Jetsocket: client events are not allowed on encrypted channels (' + this.name + ')');
    if (!needsAuth(this.name)) throw new Error('Jetsocket: client events need a private- or presence- channel (' + this.name + ')');
    if (!this.subscribed) return Promise.reject(new Error('Jetsocket: not subscribed to ' + this.name));
    var ch = this;
    return this.client.connection.emitWithAck(event, { channel: this.name, data: data }, function (ack) {
      // The server does not send a client its own client event: its offset is no gap.
      if (ack && ack.ok && isPosition(ack)) ch.skipOwn(ack);
    });
  };

  // skipOwn records the position of this client's own client event (the trigger's ack),
  // or moves past it at once when it is the next one.
  Channel.prototype.skipOwn = function (pos) {
    var p = this.position;
    if (!p || p.epoch !== pos.epoch || pos.offset <= p.offset) return;
    if (pos.offset === p.offset + 1 && !this.recovery) {
      this.position = { epoch: p.epoch, offset: pos.offset };
      this.advanceOwn();
      return;
    }
    (this.own = this.own || dict())[pos.offset] = true;
  };

  // advanceOwn moves the position past own client events that come next.
  Channel.prototype.advanceOwn = function () {
    var p = this.position;
    while (this.own && p && this.own[p.offset + 1]) {
      delete this.own[p.offset + 1];
      p = this.position = { epoch: p.epoch, offset: p.offset + 1 };
    }
  };

  // decrypt opens an encrypted channel's {nonce, ciphertext}; undefined when it does not.
  Channel.prototype.decrypt = function (data) {
    var nacl = this.client.nacl;
    if (!this.key || !nacl || !data || typeof data.nonce !== 'string' || typeof data.ciphertext !== 'string') return undefined;
    try {
      var plain = nacl.secretbox.open(base64ToBytes(data.ciphertext), base64ToBytes(data.nonce), this.key);
      if (!plain) return undefined;
      var text = utf8Decode(plain);
      try { return JSON.parse(text); } catch (e) { return text; }
    } catch (e) {
      return undefined;
    }
  };

  // ------------------------------------------------------------------ the client

  function Jetsocket(key, options) {
    if (!(this instanceof Jetsocket)) return new Jetsocket(key, options);
    options = options || {};
    this.key = key;
    this.options = {};
    for (var d in DEFAULTS) this.options[d] = DEFAULTS[d];
    for (var o in options) if (options[o] !== undefined) this.options[o] = options[o];
    if (!this.options.token) throw new Error('Jetsocket: the token option is required (a JWT or a function returning one)');

    var host = this.options.host || (globalScope.location && globalScope.location.origin);
    if (!host) throw new Error('Jetsocket: the host option is required outside a browser');
    this.host = String(host).replace(/\/+$/, '');

    var io = this.options.io || globalScope.io || optionalRequire('socket.io-client');
    if (typeof io !== 'function') throw new Error('Jetsocket: socket.io-client not found (load /vendor/socket.io.min.js or pass options.io)');
    this.nacl = this.options.nacl || globalScope.nacl || null; // required lazily, for encrypted channels

    this.channels = dict();
    this.dispatcher = new Dispatcher();
    this.signinWanted = false;
    // user is pusher-js's pusher.user: its id once signed in, and the watchlist to bind
    // 'online' / 'offline' on (before or after signin(), as in pusher-js).
    this.user = { id: undefined, watchlist: new Dispatcher() };
    var transport = this.options.transport || pickTransport(io, this.host, this.options);
    this.connection = new Connection(this, this.options, transport);
    if (this.options.autoConnect !== false) this.connect();
  }

  Jetsocket.prototype.connect = function () { this.connection.connect(); return this; };
  Jetsocket.prototype.disconnect = function () { this.connection.disconnect(); return this; };
  Jetsocket.prototype.bind = function (e, cb, ctx) { this.dispatcher.bind(e, cb, ctx); return this; };
  Jetsocket.prototype.unbind = function (e, cb) { this.dispatcher.unbind(e, cb); return this; };
  Jetsocket.prototype.bind_global = function (cb) { this.dispatcher.bind_global(cb); return this; };
  Jetsocket.prototype.unbind_global = function (cb) { this.dispatcher.unbind_global(cb); return this; };
  Jetsocket.prototype.channel = function (name) { return this.channels[name]; };
  Jetsocket.prototype.allChannels = function () {
    var out = [];
    for (var n in this.channels) out.push(this.channels[n]);
    return out;
  };

  // subscribe returns the channel (the same one when called again) and subscribes it now
  // if connected, else as soon as the connection is up; and again after every reconnect.
  Jetsocket.prototype.subscribe = function (name) {
    name = String(name);
    if (name.charAt(0) === '#') throw new Error('Jetsocket: internal channels cannot be subscribed: ' + name);
    if (isEncrypted(name) && !this.encryption()) {
      throw new Error('Jetsocket: encrypted channels need tweetnacl (load /vendor/nacl-fast.min.js or pass options.nacl)');
    }
    var ch = this.channels[name];
    if (!ch) ch = this.channels[name] = new Channel(this, name);
    if (!ch.subscribed && !ch.subscriptionPending && this.connection.state === 'connected') this.subscribeChannel(ch, false);
    return ch;
  };

  Jetsocket.prototype.unsubscribe = function (name) {
    var ch = this.channels[name];
    if (!ch) return;
    delete this.channels[name];
    var was = ch.subscribed || ch.subscriptionPending;
    this.resetChannel(ch);
    if (was) this.connection.send('jetsocket:unsubscribe', { channel: name });
  };

  Jetsocket.prototype.resetChannel = function (ch) {
    ch.request++;
    ch.subscribed = false;
    ch.subscriptionPending = false;
    ch.key = null;
    ch.recovery = null; // a replay cut short by a disconnect ends with the next subscribe's
    if (ch.members) ch.members.reset();
  };

  Jetsocket.prototype.encryption = function () {
    if (!this.nacl) this.nacl = optionalRequire('tweetnacl');
    return this.nacl;
  };

  // authorize asks the app's channelAuthorization endpoint (when configured) to sign this
  // subscription: a form-encoded POST of socket_id and channel_name, as Pusher's client does.
  Jetsocket.prototype.authorize = function (channelName, socketId) {
    var auth = this.options.channelAuthorization;
    if (!auth || !needsAuth(channelName)) return Promise.resolve(null);
    return this.askBackend(auth, { socket_id: socketId, channel_name: channelName });
  };

  Jetsocket.prototype.askBackend = function (conf, params) {
    if (typeof conf.customHandler === 'function') {
      return new Promise(function (resolve, reject) {
        conf.customHandler({ socketId: params.socket_id, channelName: params.channel_name }, function (err, data) {
          if (err) reject(errorOf('AuthError', err.status || 0, 'auth_failed', err.message || String(err)));
          else resolve(data);
        });
      });
    }
    var fetchFn = this.options.fetch || globalScope.fetch;
    var body = [];
    var all = {};
    var k;
    var extra = conf.params || {};
    for (k in extra) all[k] = extra[k];
    for (k in params) all[k] = params[k];
    for (k in all) body.push(encodeURIComponent(k) + '=' + encodeURIComponent(all[k]));
    var headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    var confHeaders = typeof conf.headers === 'function' ? conf.headers() : (conf.headers || {});
    for (k in confHeaders) headers[k] = confHeaders[k];
    var endpoint = conf.endpoint || '';
    if (globalScope.location === undefined && endpoint.charAt(0) === '/') endpoint = this.host + endpoint;
    return Promise.resolve(fetchFn(endpoint, { method: 'POST', headers: headers, body: body.join('&'), credentials: 'same-origin' }))
      .then(function (res) {
        return res.text().then(function (text) {
          if (!res.ok) throw errorOf('AuthError', res.status, 'auth_failed', 'the endpoint ' + conf.endpoint + ' answered ' + res.status);
          try { return JSON.parse(text); } catch (e) { throw errorOf('AuthError', res.status, 'auth_failed', 'the endpoint ' + conf.endpoint + ' answered with no JSON'); }
        });
      }, function (err) {
        throw errorOf('AuthError', 0, 'auth_failed', 'cannot reach ' + conf.endpoint + ': ' + (err && err.message || err));
      });
  };

  // subscribeChannel sends jetsocket:subscribe (after the auth endpoint, if any), with
  // `since` when the channel has a position. `quiet` is a re-subscribe on the same
  // connection (a fresh key, a gap), which fires no subscription_succeeded.
  Jetsocket.prototype.subscribeChannel = function (ch, quiet) {
    var self = this;
    var conn = this.connection;
    var request = ++ch.request;
    var socketId = conn.socket_id;
    var current = function () { return request === ch.request && self.channels[ch.name] === ch && conn.socket_id === socketId; };
    ch.subscriptionPending = true;
    ch.recovery = null;
    var authData = null;
    this.authorize(ch.name, socketId).then(function (auth) {
      if (!current()) return null;
      authData = auth;
      var payload = { channel: ch.name };
      if (auth && auth.auth) payload.auth = auth.auth;
      if (auth && auth.channel_data) payload.channel_data = auth.channel_data;
      var since = ch.position;
      if (since) payload.since = { epoch: since.epoch, offset: since.offset };
      // Handled in the ack's own callback: the replay follows the ack in the same payload.
      return conn.emitWithAck('jetsocket:subscribe', payload, function (ack) {
        if (current()) self.subscribed(ch, ack, authData, since, quiet);
      });
    }).catch(function (err) {
      if (!current()) return;
      ch.subscriptionPending = false;
      ch.subscribed = false;
      var e = err && err.type ? err : errorOf('SubscriptionError', 0, 'subscribe_failed', err && err.message || String(err));
      ch.emit('jetsocket:subscription_error', e);
    });
  };

  // subscribed takes a subscribe's ack: the channel's key and members, its position, and
  // the replay that follows when `since` was recovered.
  Jetsocket.prototype.subscribed = function (ch, ack, authData, since, quiet) {
    ch.subscriptionPending = false;
    if (!ack || !ack.ok) {
      this.resetChannel(ch);
      ch.emit('jetsocket:subscription_error', errorOf('SubscriptionError', ack && ack.status || 0, ack && ack.code || 'unknown', ack && ack.error || 'subscription refused'));
      return;
    }
    ch.subscribed = true;
    var secret = ack.shared_secret || (authData && authData.shared_secret);
    if (isEncrypted(ch.name)) ch.key = secret ? base64ToBytes(secret) : null;
    if (ch.members) {
      var myID = this.connection.user_id;
      if (authData && authData.channel_data) {
        try { myID = String(JSON.parse(authData.channel_data).user_id); } catch (e) { /* the server refused it already */ }
      }
      ch.members.setAll(ack.presence, myID);
    }
    if (!quiet) ch.emit('jetsocket:subscription_succeeded', ch.members || ack);
    this.startRecovery(ch, ack, since, quiet);
  };

  // startRecovery sets the channel's position from a subscribe's ack. Without `since` (a
  // first subscribe) the ack's position is where delivery starts. With it, recovered means
  // that every publication after `since` up to the ack's position follows (the recovery
  // ends when that one has been delivered); not recovered means nothing follows, and the
  // app is told to refetch its state.
  Jetsocket.prototype.startRecovery = function (ch, ack, since, sameConnection) {
    var latest = isPosition(ack.position) ? { epoch: ack.position.epoch, offset: ack.position.offset } : null;
    if (!since) {
      ch.position = latest;
      return;
    }
    if (ack.recovered === true && latest && latest.epoch === since.epoch) {
      if (latest.offset <= since.offset) {
        this.endRecovery(ch, true, 0);
        return;
      }
      ch.recovery = { target: latest.offset, replayed: 0, sameConnection: !!sameConnection };
      return;
    }
    ch.position = latest;
    this.endRecovery(ch, false, 0);
  };

  Jetsocket.prototype.endRecovery = function (ch, recovered, replayed) {
    ch.recovery = null;
    ch.emit('jetsocket:recovery', { recovered: recovered, replayed: replayed });
  };

  // sequenced checks a channel event's position against the channel's: true when it is
  // the next one (or carries none), to be delivered. False for one already delivered (a
  // replay and a live delivery may both bring it), for one while a re-subscribe with
  // `since` is pending (its replay brings it), and for one after a gap, which starts such
  // a re-subscribe from the last position: the replay brings the missing ones and this
  // one in order. A second gap at the same place is accepted rather than looped on.
  Jetsocket.prototype.sequenced = function (ch, payload) {
    if (!isPosition(payload)) return true;
    var p = ch.position;
    if (!p) return true;
    if (ch.subscriptionPending) return false;
    if (p.epoch === payload.epoch && payload.offset <= p.offset) return false;
    var gap = p.epoch !== payload.epoch || payload.offset > p.offset + 1;
    if (gap && !ch.recovery && ch.gapAt !== p.offset) {
      ch.gapAt = p.offset;
      this.subscribeChannel(ch, true);
      return false;
    }
    return true;
  };

  // delivered moves the channel's position to a delivered event's.
  Jetsocket.prototype.delivered = function (ch, payload) {
    if (!isPosition(payload)) return;
    var p = ch.position;
    if (p && p.epoch === payload.epoch && payload.offset === p.offset + 1) ch.gapAt = -1;
    ch.position = { epoch: payload.epoch, offset: payload.offset };
    ch.advanceOwn();
  };

  // countReplayed counts a delivered event towards a recovery under way, which ends once
  // its target has reached the callbacks.
  Jetsocket.prototype.countReplayed = function (ch, handed) {
    var r = ch.recovery;
    if (!r || !ch.position) return;
    if (handed) r.replayed++;
    if (ch.position.offset >= r.target) this.endRecovery(ch, true, r.replayed);
  };

  // skipped moves the channel's position past a publication the server did not send this
  // connection (jetsocket:skip {channel, epoch, offset}), in order like a delivered one:
  // no callback, no gap, and it counts towards a recovery's target.
  Jetsocket.prototype.skipped = function (ch, payload) {
    if (!isPosition(payload) || !this.sequenced(ch, payload)) return;
    this.delivered(ch, payload);
    this.countReplayed(ch, false);
  };

  // ownEcho: a client event this connection sent itself, replayed by a re-subscribe on
  // the same connection (a gap). The server never sends a client its own client events,
  // so its offset looks like a gap; the replay fills it, and the event is passed over
  // (position kept) rather than handed to the sender as if someone else had sent it.
  Jetsocket.prototype.ownEcho = function (ch, name, payload) {
    var r = ch.recovery;
    return !!(r && r.sameConnection && name.indexOf('client-') === 0 &&
      payload.user_id !== undefined && String(payload.user_id) === this.connection.user_id);
  };

  // signin signs this connection in as the user the app's userAuthentication endpoint
  // names (Pusher's user authentication), now and after every reconnect.
  Jetsocket.prototype.signin = function () {
    if (!this.options.userAuthentication) throw new Error('Jetsocket: signin() needs the userAuthentication option');
    this.signinWanted = true;
    if (this.connection.state !== 'connected') return Promise.resolve(null);
    return this.doSignin();
  };

  Jetsocket.prototype.doSignin = function () {
    var self = this;
    var conn = this.connection;
    var socketId = conn.socket_id;
    return this.askBackend(this.options.userAuthentication, { socket_id: socketId }).then(function (auth) {
      return conn.emitWithAck('jetsocket:signin', { auth: auth && auth.auth, user_data: auth && auth.user_data });
    }).then(function (ack) {
      if (ack && ack.ok) {
        self.user.id = String(ack.user_id);
        self.dispatcher.emit('jetsocket:signin_success', { user_id: ack.user_id });
        return ack;
      }
      throw errorOf('SigninError', ack && ack.status || 0, ack && ack.code || 'signin_failed', ack && ack.error || 'sign-in refused');
    }).catch(function (err) {
      var e = err && err.type ? err : errorOf('SigninError', 0, 'signin_failed', err && err.message || String(err));
      if (conn.socket_id === socketId) self.dispatcher.emit('jetsocket:signin_error', e);
      throw e;
    });
  };

  // onConnected re-subscribes every channel (the server forgets them with the connection)
  // and signs in again.
  Jetsocket.prototype.onConnected = function () {
    for (var n in this.channels) this.subscribeChannel(this.channels[n], false);
    if (this.signinWanted) this.doSignin().catch(function () { /* reported as jetsocket:signin_error */ });
  };

  Jetsocket.prototype.onDisconnected = function () {
    for (var n in this.channels) this.resetChannel(this.channels[n]);
    this.user.id = undefined;
  };

  // onEvent routes one server event: presence and subscription bookkeeping, channel events
  // (decrypted on encrypted channels), and everything to the client's own bindings.
  Jetsocket.prototype.onEvent = function (name, payload) {
    var chName = payload && typeof payload.channel === 'string' ? payload.channel : null;
    var ch = chName ? this.channels[chName] : null;
    switch (name) {
      case 'jetsocket:subscription_succeeded':
        return; // the subscribe's ack already told us
      case 'jetsocket:subscription_error':
        // Unprompted: a token refresh took a channel away (a pending subscribe has its ack).
        if (ch && ch.subscribed && !ch.subscriptionPending) {
          this.resetChannel(ch);
          ch.emit(name, errorOf('SubscriptionError', payload.status, payload.code, payload.error));
        }
        return;
      case 'jetsocket:skip':
        // A publication this connection was not sent (an API trigger with its socket_id,
        // or its own client event in a replay): its position, so that it is no gap.
        if (ch && ch.subscribed) this.skipped(ch, payload);
        return;
      case 'jetsocket:member_added':
      case 'jetsocket:member_removed':
        if (!ch || !ch.members || !ch.subscribed) return;
        var member = name === 'jetsocket:member_added'
          ? ch.members.add(payload.user_id, payload.user_info)
          : ch.members.remove(payload.user_id);
        if (member) ch.emit(name, member);
        return;
      // Named as pusher-js names them, so that code binding them moves over unchanged.
      case 'jetsocket:subscription_count':
        if (!ch || !ch.subscribed || !payload.data) return;
        ch.subscriptionCount = payload.data.subscription_count;
        ch.emit('pusher:subscription_count', payload.data, { channel: chName });
        this.dispatcher.emit('pusher:subscription_count', payload.data, { channel: chName });
        return;
      case 'jetsocket:watchlist_events':
        // As pusher-js's WatchlistFacade: each {name, user_ids} on user.watchlist.
        var events = payload && Array.isArray(payload.events) ? payload.events : [];
        for (var i = 0; i < events.length; i++) {
          if (events[i] && typeof events[i].name === 'string') this.user.watchlist.emit(events[i].name, events[i]);
        }
        return;
      case 'jetsocket:cache_miss':
        if (!ch || !ch.subscribed) return;
        ch.emit('pusher:cache_miss', {}, { channel: chName });
        this.dispatcher.emit('pusher:cache_miss', {}, { channel: chName });
        return;
    }
    if (!chName) {
      this.dispatcher.emit(name, payload, {});
      return;
    }
    var metadata = { channel: chName };
    if (payload.user_id !== undefined) metadata.user_id = String(payload.user_id);
    if (chName.charAt(0) === '#') {
      // Sent to this user (sendToUser): no channel object, the client's bindings only.
      this.dispatcher.emit(name, payload.data, metadata);
      return;
    }
    if (!ch || !ch.subscribed) return;
    if (!this.sequenced(ch, payload)) return;
    if (isPosition(payload)) {
      metadata.offset = payload.offset;
      metadata.epoch = payload.epoch;
    }
    var data = payload.data;
    if (isEncrypted(chName)) {
      data = ch.decrypt(payload.data);
      if (data === undefined) {
        ch.emit('jetsocket:decryption_error', { event: name, error: 'the payload does not decrypt with the channel key' });
        if (!ch.rekeyed) {
          ch.rekeyed = true;
          this.subscribeChannel(ch, true);
        }
        return;
      }
      ch.rekeyed = false;
    }
    this.delivered(ch, payload);
    if (this.ownEcho(ch, name, payload)) {
      this.countReplayed(ch, false);
      return;
    }
    ch.emit(name, data, metadata);
    this.dispatcher.emit(name, data, metadata);
    if (isPosition(payload)) this.countReplayed(ch, true);
  };

  Jetsocket.Channel = Channel;
  Jetsocket.Members = Members;
  Jetsocket.Connection = Connection;
  Jetsocket.STATES = STATES.slice();
  Jetsocket.socketIO2Transport = socketIO2Transport;
  Jetsocket.socketIO4Transport = socketIO4Transport;
  Jetsocket.tokenExpiry = tokenExpiry;
  Jetsocket.Jetsocket = Jetsocket;
  Jetsocket['default'] = Jetsocket;
  return Jetsocket;
});
