// Secure messaging page: log in with Jetsocket's /login, connect with the Jetsocket client,
// subscribe to the encrypted channel through this backend's /jetsocket/auth, send through
// /send-encrypted-message. Messages arrive encrypted and the client decrypts them here.
(function () {
  'use strict';

  var config = window.SECURE_MESSAGING;
  var $ = function (id) { return document.getElementById(id); };
  var session = null; // {token, user}
  var client = null;

  function show(id, text) {
    $(id).textContent = text || '';
    $(id).hidden = !text;
  }

  function addMessage(from, text) {
    var li = document.createElement('li');
    var who = document.createElement('span');
    who.className = 'from';
    who.textContent = from;
    var body = document.createElement('span');
    body.className = 'text';
    body.textContent = text; // text, never markup
    li.appendChild(who);
    li.appendChild(body);
    $('messages').appendChild(li);
  }

  function bearer() { return { Authorization: 'Bearer ' + session.token }; }

  function login(username, password) {
    return fetch(config.jetsocket_url + '/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: username, password: password }),
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok) throw new Error(res.status === 401 ? 'Wrong username or password.' : 'Login failed (HTTP ' + res.status + ').');
        return body;
      });
    });
  }

  function start() {
    client = new Jetsocket(config.app_key, {
      host: config.jetsocket_url,
      token: function () { return session.token; },
      // This backend signs the subscription (and hands over the channel key) for its users.
      channelAuthorization: { endpoint: '/jetsocket/auth', headers: bearer },
    });
    client.connection.bind('state_change', function (s) { $('status').textContent = s.current; });
    var channel = client.subscribe(config.channel);
    channel.bind('jetsocket:subscription_succeeded', function () {
      $('chat-state').textContent = 'joined';
      $('send-form').hidden = false;
    });
    channel.bind('jetsocket:subscription_error', function (err) {
      $('chat-state').textContent = 'error ' + err.status + ': ' + err.error;
      client.unsubscribe(config.channel);
    });
    // Already decrypted by the client with the channel key.
    channel.bind(config.event, function (data) { addMessage(data.from, data.message); });
    channel.bind('jetsocket:decryption_error', function () { addMessage('?', 'a message that does not decrypt'); });
  }

  function send(text) {
    return fetch('/send-encrypted-message', {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json' }, bearer()),
      body: JSON.stringify({ message: text }),
    }).then(function (res) {
      if (!res.ok) return res.json().catch(function () { return {}; }).then(function (b) { throw new Error(b.message || 'HTTP ' + res.status); });
    });
  }

  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    show('login-error', '');
    login($('username').value.trim(), $('password').value).then(function (body) {
      session = { token: body.token, user: body.user };
      $('login-form').hidden = true;
      start();
    }, function (err) { show('login-error', err.message); });
  });

  $('send-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var text = $('message').value.trim();
    if (!text) return;
    show('send-error', '');
    send(text).then(function () { $('message').value = ''; }, function (err) { show('send-error', 'Not sent: ' + err.message); });
  });
})();
