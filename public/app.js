// Jetsocket demo page: log in, connect with the Jetsocket client, show what happens.
//
// No framework and no build step. The file is laid out in small parts so panels (the
// chat in chat.js) plug in without a rewrite:
//   session  - the token kept in sessionStorage
//   api      - HTTP calls (POST /login)
//   view     - everything that touches the DOM
//   events   - a tiny registry: app.on(name, fn) for app:* lifecycle events
//   connection - the Jetsocket client (js/jetsocket.js): connect / disconnect / ping
// A new panel registers with app.on(...) and uses app.client() (channels, bind, trigger).
(function () {
  'use strict';

  var STORAGE_KEY = 'jetsocket.session';
  var MAX_LOG_ENTRIES = 300;

  var state = {
    session: null, // {token, expires_at, user: {id, name}}
    client: null,  // the Jetsocket client while logged in
    established: null, // {socket_id, user_id} of the current connection
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

  // listeners: "app:*" lifecycle events fired by this file for the panels (app:connected
  // with the Jetsocket client, app:established with {socket_id, user_id}, app:closed).
  var listeners = {};

  function on(name, handler) {
    (listeners[name] = listeners[name] || []).push(handler);
  }

  function fire(name, payload) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(payload); } catch (e) { log('error', name + ' handler failed: ' + e.message); }
    });
  }

  // ---------------------------------------------------------------- connection

  // connect starts the Jetsocket client (js/jetsocket.js). It asks the token function on
  // every connect and reconnect, reconnects by itself, re-subscribes the rooms' channels
  // after a reconnect and reports its state.
  function connect(session) {
    disconnect();
    var token = function () { return state.session && state.session.token; };
    var pusherMode = window.jetsocketPusherMode && window.jetsocketPusherMode.mode();
    var client;
    if (pusherMode) {
      if (!pusherMode.key || typeof window.Pusher !== 'function') {
        setStatus('error: pusher-js mode needs ?client=pusher-js&key=<APP_KEY>');
        return;
      }
      log('info', 'connecting with pusher-js to ' + location.origin + '/app/' + pusherMode.key);
      client = window.jetsocketPusherMode.client(pusherMode.key, token);
    } else {
      log('info', 'connecting to ' + location.origin);
      client = new Jetsocket('demo', { token: token, autoConnect: false });
    }
    state.client = client;

    client.connection.bind('state_change', function (change) {
      if (state.client !== client) return;
      if (change.current !== 'failed') setStatus(change.current);
      if (change.current !== 'connected') resetConnectionFacts();
      log('info', 'state ' + change.previous + ' \u2192 ' + change.current);
    });
    client.connection.bind('connected', function (info) {
      state.established = info;
      setText('socket-id', info && info.socket_id);
      if (info && info.user_id) setText('user', info.user_id); // pusher-js has none: the login's stays
      setText('transport', client.connection.transportName());
      $('ping-button').disabled = !!pusherMode; // pusher-js pings by itself, with no answer to show
      fire('app:established', info);
    });
    client.connection.bind('error', function (err) {
      log('error', 'connection: ' + err.error + (err.status ? ' (HTTP ' + err.status + ')' : ''));
    });
    // The client asked the token function once more after a 401 and was refused again.
    client.connection.bind('failed', function (reason) {
      if (reason && reason.status === 401) {
        endSession('The server refused your session. Please sign in again.');
        setStatus('error: token refused (401)');
        return;
      }
      setStatus('error: ' + (reason ? reason.error : 'failed'));
    });
    client.bind_global(function (event, data) { log('in', event, data); });
    client.bind('jetsocket:token_expired', function () {
      endSession('Your session expired. Please sign in again.');
    });
    client.bind('jetsocket:error', function (err) {
      log('error', 'server error ' + (err && err.code) + ': ' + (err && err.message));
    });

    fire('app:connected', client);
    client.connect();
  }

  function disconnect() {
    if (!state.client) return;
    var client = state.client;
    state.client = null;
    client.disconnect();
    resetConnectionFacts();
    setStatus('disconnected');
    fire('app:closed'); // the page closed it (log out, new session): panels reset
  }

  function ping() {
    if (!state.client) return;
    var started = performance.now();
    log('out', 'jetsocket:ping');
    state.client.connection.ping().then(function (answer) {
      var ms = Math.round(performance.now() - started);
      setText('transport', state.client && state.client.connection.transportName());
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
  window.jetsocketApp = {
    state: state, on: on, log: log,
    client: function () { return state.client; },
  };

  if (typeof io !== 'function' || typeof Jetsocket !== 'function') {
    document.addEventListener('DOMContentLoaded', function () {
      setStatus('error: the Jetsocket client failed to load');
    });
    return;
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
