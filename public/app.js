// Jetsocket demo page: log in, connect over socket.io, show what happens.
//
// No framework and no build step. The file is laid out in small parts so panels (the
// chat in chat.js) plug in without a rewrite:
//   session  - the token kept in sessionStorage
//   api      - HTTP calls (POST /login)
//   view     - everything that touches the DOM
//   events   - a tiny registry: app.on(name, fn) for socket events and app:* lifecycle events
//   socket   - connect / disconnect / emit with ack
// A new panel registers its handlers with app.on(...) and sends with app.emit(...).
(function () {
  'use strict';

  var STORAGE_KEY = 'jetsocket.session';
  var MAX_LOG_ENTRIES = 300;
  var ACK_TIMEOUT_MS = 5000;

  var state = {
    session: null, // {token, expires_at, user: {id, name}}
    socket: null,  // the socket.io-client Socket while logged in
    established: null, // {socket_id, user_id} from jetsocket:connection_established
  };

  // ---------------------------------------------------------------- session

  function loadSession() {
    try {
      var s = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
      return s && typeof s.token === 'string' && s.token ? s : null;
    } catch (e) {
      return null;
    }
  }

  function saveSession(session) {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    state.session = session;
  }

  function clearSession() {
    sessionStorage.removeItem(STORAGE_KEY);
    state.session = null;
  }

  function isExpired(session) {
    var t = Date.parse(session.expires_at || '');
    return !isNaN(t) && t <= Date.now();
  }

  // ---------------------------------------------------------------- api

  // login resolves to a session or rejects with an Error whose message is fit for the user.
  function login(username, password) {
    return fetch('/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify({ username: username, password: password }),
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (res.ok && body.token) {
          return { token: body.token, expires_at: body.expires_at, user: body.user || null };
        }
        throw new Error(loginErrorMessage(res, body));
      });
    }, function () {
      throw new Error('Cannot reach the server.');
    });
  }

  function loginErrorMessage(res, body) {
    switch (res.status) {
      case 401: return 'Wrong username or password.';
      case 400: return 'Enter a username and a password.';
      case 429: {
        var wait = res.headers.get('Retry-After');
        return 'Too many login attempts.' + (wait ? ' Try again in ' + wait + ' s.' : ' Try again later.');
      }
      default: return 'Login failed (HTTP ' + res.status + (body.error ? ', ' + body.error : '') + ').';
    }
  }

  // ---------------------------------------------------------------- view

  var $ = function (id) { return document.getElementById(id); };

  // setStatus shows the connection state: "disconnected", "connecting", "connected"
  // or "error: <message>".
  function setStatus(status) {
    var el = $('status');
    el.textContent = status;
    el.dataset.state = status.indexOf('error') === 0 ? 'error' : status;
  }

  function setText(id, text) {
    $(id).textContent = text === undefined || text === null || text === '' ? '-' : String(text);
  }

  function showLogin(message) {
    $('session-panel').hidden = true;
    $('login-panel').hidden = false;
    showLoginError(message);
    $('password').value = '';
    $('login-button').disabled = false;
    ($('username').value ? $('password') : $('username')).focus();
  }

  function showLoginError(message) {
    var el = $('login-error');
    el.textContent = message || '';
    el.hidden = !message;
  }

  function showSession(session) {
    $('login-panel').hidden = true;
    $('session-panel').hidden = false;
    setText('user', session.user && session.user.id);
    $('user-name').textContent = session.user && session.user.name ? '(' + session.user.name + ')' : '';
    setText('expires-at', session.expires_at ? new Date(session.expires_at).toLocaleString() : '');
    resetConnectionFacts();
  }

  function resetConnectionFacts() {
    state.established = null;
    setText('socket-id', '');
    setText('transport', '');
    $('ping-button').disabled = true;
  }

  // log appends one line to the event log. kind: "in" | "out" | "info" | "error".
  function log(kind, text, data) {
    var list = $('log');
    var item = document.createElement('li');
    item.className = 'log-' + kind;

    var time = document.createElement('time');
    time.textContent = new Date().toLocaleTimeString();
    item.appendChild(time);

    var label = document.createElement('span');
    label.className = 'log-text';
    label.textContent = ({ in: '\u2190 ', out: '\u2192 ' }[kind] || '') + text;
    item.appendChild(label);

    if (data !== undefined) {
      var pre = document.createElement('code');
      pre.className = 'log-data';
      pre.textContent = preview(data);
      item.appendChild(pre);
    }
    list.appendChild(item);
    while (list.children.length > MAX_LOG_ENTRIES) list.removeChild(list.firstChild);
    list.scrollTop = list.scrollHeight;
  }

  function preview(data) {
    var s;
    try { s = typeof data === 'string' ? data : JSON.stringify(data); } catch (e) { s = String(data); }
    return s.length > 500 ? s.slice(0, 500) + '\u2026' : s;
  }

  // ---------------------------------------------------------------- events

  // listeners: event name -> [handler]. Socket events are attached to every new socket;
  // "app:*" names are fired by this file (app:connected, app:established, app:disconnected,
  // app:closed).
  var listeners = {};

  function on(name, handler) {
    (listeners[name] = listeners[name] || []).push(handler);
    if (state.socket && name.indexOf('app:') !== 0) state.socket.on(name, handler);
  }

  function fire(name, payload) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(payload); } catch (e) { log('error', name + ' handler failed: ' + e.message); }
    });
  }

  // ---------------------------------------------------------------- socket

  function connect(session) {
    disconnect();
    setStatus('connecting');
    log('info', 'connecting to ' + location.origin);

    var socket = io(location.origin, {
      query: { token: session.token },
      forceNew: true,
    });
    state.socket = socket;

    logIncomingEvents(socket);
    watchTransport(socket);

    socket.on('connect', function () {
      setStatus('connected');
      $('ping-button').disabled = false;
      log('info', 'connected');
      fire('app:connected', socket);
    });

    socket.on('disconnect', function (reason) {
      resetConnectionFacts();
      log('info', 'disconnected: ' + reason);
      // Only these two are final; otherwise socket.io reconnects by itself.
      var final = reason === 'io client disconnect' || reason === 'io server disconnect';
      setStatus(final ? 'disconnected' : 'connecting');
      fire('app:disconnected', reason);
    });

    socket.on('connect_error', function (err) { onConnectError(socket, err); });
    socket.on('connect_timeout', function () { setStatus('error: connection timed out'); });
    socket.on('reconnect_attempt', function (n) {
      setStatus('connecting');
      log('info', 'reconnecting (attempt ' + n + ')');
    });
    socket.on('reconnect_failed', function () { setStatus('error: could not reconnect'); });

    Object.keys(listeners).forEach(function (name) {
      if (name.indexOf('app:') === 0) return;
      listeners[name].forEach(function (fn) { socket.on(name, fn); });
    });
  }

  // A refused handshake reaches socket.io-client 2.x as connect_error whose `description`
  // is the HTTP status of the polling request: 401 means the token was refused.
  function onConnectError(socket, err) {
    var status = err && typeof err.description === 'number' ? err.description : 0;
    if (status === 401) {
      log('error', 'the server refused the token (HTTP 401)');
      endSession('The server refused your session. Please sign in again.');
      setStatus('error: token refused (401)');
      return;
    }
    var message = (err && err.message) || String(err);
    if (status) message += ' (HTTP ' + status + ')';
    log('error', 'connect_error: ' + message);
    setStatus('error: ' + message);
  }

  // logIncomingEvents logs every event the server sends. socket.io-client 2.x has no
  // onAny, so wrap the socket's onevent.
  function logIncomingEvents(socket) {
    var original = socket.onevent;
    socket.onevent = function (packet) {
      var args = packet.data || [];
      log('in', String(args[0]), args.length > 1 ? args[1] : undefined);
      return original.call(this, packet);
    };
  }

  // watchTransport shows polling/websocket. The manager opens a new engine on every
  // (re)connect; each engine may later upgrade from polling to websocket.
  function watchTransport(socket) {
    socket.io.on('open', function () {
      var engine = socket.io.engine;
      setText('transport', engine.transport && engine.transport.name);
      engine.on('upgrade', function (transport) {
        setText('transport', transport.name);
        log('info', 'transport upgraded to ' + transport.name);
      });
    });
  }

  function disconnect() {
    if (!state.socket) return;
    var socket = state.socket;
    state.socket = null;
    socket.off();
    socket.io.off();
    socket.close();
    resetConnectionFacts();
    setStatus('disconnected');
    fire('app:closed'); // the page closed it (log out, new session): panels reset
  }

  // emit sends an event and resolves with the ack, or rejects after ACK_TIMEOUT_MS.
  function emit(name, payload) {
    return new Promise(function (resolve, reject) {
      var socket = state.socket;
      if (!socket || !socket.connected) return reject(new Error('not connected'));
      var timer = setTimeout(function () { reject(new Error(name + ': no answer in ' + ACK_TIMEOUT_MS + ' ms')); }, ACK_TIMEOUT_MS);
      var ack = function (answer) { clearTimeout(timer); resolve(answer); };
      log('out', name, payload);
      if (payload === undefined) socket.emit(name, ack); else socket.emit(name, payload, ack);
    });
  }

  function ping() {
    var started = performance.now();
    emit('jetsocket:ping').then(function (answer) {
      var ms = Math.round(performance.now() - started);
      log('info', 'pong in ' + ms + ' ms', answer);
    }, function (err) {
      log('error', err.message);
    });
  }

  // ---------------------------------------------------------------- session flow

  function startSession(session) {
    state.session = session;
    showSession(session);
    connect(session);
  }

  function endSession(message) {
    disconnect();
    clearSession();
    showLogin(message);
  }

  // Handlers every page needs; later panels add theirs the same way.
  on('jetsocket:connection_established', function (info) {
    state.established = info;
    setText('socket-id', info && info.socket_id);
    setText('user', info && info.user_id);
    fire('app:established', info);
  });
  on('jetsocket:token_expired', function () {
    endSession('Your session expired. Please sign in again.');
  });
  on('jetsocket:error', function (err) {
    log('error', 'server error ' + (err && err.code) + ': ' + (err && err.message));
  });

  function onLoginSubmit(event) {
    event.preventDefault();
    var username = $('username').value.trim();
    var password = $('password').value;
    if (!username || !password) return showLoginError('Enter a username and a password.');
    showLoginError('');
    $('login-button').disabled = true;
    login(username, password).then(function (session) {
      saveSession(session);
      log('info', 'logged in as ' + username);
      startSession(session);
    }, function (err) {
      log('error', 'login failed: ' + err.message);
      showLoginError(err.message);
      $('login-button').disabled = false;
      $('password').select();
    });
  }

  function init() {
    $('login-form').addEventListener('submit', onLoginSubmit);
    $('logout-button').addEventListener('click', function () {
      log('info', 'logged out');
      endSession('');
    });
    $('ping-button').addEventListener('click', ping);
    $('clear-log').addEventListener('click', function () { $('log').textContent = ''; });

    setStatus('disconnected');
    var session = loadSession();
    if (session && isExpired(session)) {
      clearSession();
      showLogin('Your session expired. Please sign in again.');
    } else if (session) {
      startSession(session);
    } else {
      showLogin('');
    }
  }

  // A small handle for later panels and for debugging in the console.
  window.jetsocketApp = { state: state, on: on, emit: emit, log: log };

  if (typeof io !== 'function') {
    document.addEventListener('DOMContentLoaded', function () {
      setStatus('error: socket.io client failed to load');
    });
    return;
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
