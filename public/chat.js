// Jetsocket demo chat: one room per channel type, on the page's connection (app.js).
//
//   chat                          public: anyone connected; backends publish "message"
//   private-group-staff           private: group "staff" (alice, bob); client events
//   presence-lobby                presence: anyone, with the member list; client events
//   private-encrypted-group-staff end-to-end encrypted: staff with the encrypted-channels
//                                 permission (alice); backends publish encrypted
//                                 "message" events, decrypted here with the channel key
//
// Messages are shown with textContent only: whatever a peer or a backend sends is text.
(function () {
  'use strict';

  var app = window.jetsocketApp;
  if (!app) return;

  var ROOMS = [
    { channel: 'chat', kind: 'public', title: 'Public', send: false },
    { channel: 'private-group-staff', kind: 'private', title: 'Private (staff)', send: true },
    { channel: 'presence-lobby', kind: 'presence', title: 'Presence (lobby)', send: true },
    { channel: 'private-encrypted-group-staff', kind: 'encrypted', title: 'Encrypted (staff)', send: false },
  ];
  var MAX_MESSAGES = 200;
  var byChannel = {};

  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---------------------------------------------------------------- rooms

  function build() {
    var box = $('rooms');
    ROOMS.forEach(function (r) {
      r.joined = false;
      r.members = {};
      r.key = null;
      var root = el('article', 'room');
      root.dataset.channel = r.channel;
      var head = el('header', 'room-head');
      head.appendChild(el('h3', '', r.title));
      head.appendChild(el('code', 'muted', r.channel));
      r.state = el('span', 'room-state', 'not joined');
      head.appendChild(r.state);
      r.toggle = el('button', 'secondary room-toggle', 'Join');
      r.toggle.type = 'button';
      r.toggle.disabled = true;
      r.toggle.addEventListener('click', function () { if (r.joined) leave(r); else join(r); });
      head.appendChild(r.toggle);
      root.appendChild(head);
      if (r.kind === 'presence') {
        r.memberList = el('ul', 'members');
        root.appendChild(r.memberList);
      }
      r.list = el('ol', 'messages');
      root.appendChild(r.list);
      if (r.send) {
        var form = el('form', 'room-form');
        r.input = el('input');
        r.input.placeholder = 'message';
        r.input.maxLength = 500;
        r.input.disabled = true;
        r.sendButton = el('button', '', 'Send');
        r.sendButton.type = 'submit';
        r.sendButton.disabled = true;
        form.appendChild(r.input);
        form.appendChild(r.sendButton);
        form.addEventListener('submit', function (ev) { ev.preventDefault(); send(r); });
        root.appendChild(form);
      }
      box.appendChild(root);
      byChannel[r.channel] = r;
    });
  }

  function setJoined(r, joined, stateText) {
    r.joined = joined;
    r.state.textContent = stateText;
    r.state.dataset.state = joined ? 'joined' : (stateText.indexOf('error') === 0 ? 'error' : 'idle');
    r.toggle.textContent = joined ? 'Leave' : 'Join';
    if (r.input) {
      r.input.disabled = !joined;
      r.sendButton.disabled = !joined;
    }
    if (!joined) {
      r.members = {};
      r.key = null;
      renderMembers(r);
    }
  }

  function addMessage(r, who, text, kind) {
    var item = el('li', 'msg' + (kind ? ' msg-' + kind : ''));
    item.appendChild(el('span', 'msg-who', who));
    item.appendChild(el('span', 'msg-text', text));
    r.list.appendChild(item);
    while (r.list.children.length > MAX_MESSAGES) r.list.removeChild(r.list.firstChild);
    r.list.scrollTop = r.list.scrollHeight;
  }

  function renderMembers(r) {
    if (!r.memberList) return;
    r.memberList.textContent = '';
    Object.keys(r.members).sort().forEach(function (id) {
      var info = r.members[id] || {};
      r.memberList.appendChild(el('li', 'member', info.name ? info.name + ' (' + id + ')' : id));
    });
  }

  // ---------------------------------------------------------------- actions

  function join(r) {
    r.toggle.disabled = true;
    app.emit('jetsocket:subscribe', { channel: r.channel }).then(function (ack) {
      r.toggle.disabled = false;
      if (!ack || !ack.ok) {
        setJoined(r, false, 'error ' + (ack && ack.status) + ': ' + (ack && ack.error));
        return;
      }
      if (ack.presence && ack.presence.hash) r.members = Object.assign({}, ack.presence.hash);
      if (ack.shared_secret) r.key = decodeBase64(ack.shared_secret);
      setJoined(r, true, 'joined');
      renderMembers(r);
    }, function (err) {
      r.toggle.disabled = false;
      setJoined(r, false, 'error: ' + err.message);
    });
  }

  function leave(r) {
    app.emit('jetsocket:unsubscribe', { channel: r.channel }).catch(function () {});
    setJoined(r, false, 'not joined');
  }

  function send(r) {
    var text = r.input.value.trim();
    if (!text) return;
    r.input.value = '';
    app.emit('client-message', { channel: r.channel, data: { text: text } }).then(function (ack) {
      if (ack && ack.ok) addMessage(r, 'me', text, 'mine');
      else addMessage(r, 'not sent', (ack && ack.error) || 'refused', 'error');
    }, function (err) {
      addMessage(r, 'not sent', err.message, 'error');
    });
  }

  // ---------------------------------------------------------------- encryption

  function decodeBase64(s) {
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // decrypt opens {nonce, ciphertext} with the channel key (NaCl secretbox, as Pusher's
  // SDKs seal it); null when it does not open.
  function decrypt(r, data) {
    if (!r.key || !window.nacl || !data || typeof data.nonce !== 'string' || typeof data.ciphertext !== 'string') return null;
    try {
      var plain = window.nacl.secretbox.open(decodeBase64(data.ciphertext), decodeBase64(data.nonce), r.key);
      if (!plain) return null;
      return JSON.parse(new TextDecoder().decode(plain));
    } catch (e) {
      return null;
    }
  }

  function textOf(data) {
    if (data && typeof data === 'object' && typeof data.text === 'string') return data.text;
    return typeof data === 'string' ? data : JSON.stringify(data);
  }

  // ---------------------------------------------------------------- socket events

  app.on('message', function (m) {
    var r = m && byChannel[m.channel];
    if (!r || !r.joined) return;
    if (r.kind === 'encrypted') {
      var plain = decrypt(r, m.data);
      if (plain === null) addMessage(r, 'backend', 'a message that does not decrypt with this channel\u2019s key', 'error');
      else addMessage(r, 'backend, decrypted', textOf(plain));
      return;
    }
    addMessage(r, 'backend', textOf(m.data));
  });

  app.on('client-message', function (m) {
    var r = m && byChannel[m.channel];
    if (!r || !r.joined) return;
    var info = r.members[m.user_id];
    addMessage(r, info && info.name ? info.name : 'user ' + m.user_id, textOf(m.data));
  });

  app.on('jetsocket:member_added', function (m) {
    var r = m && byChannel[m.channel];
    if (!r || !r.joined) return;
    r.members[m.user_id] = m.user_info || {};
    renderMembers(r);
    addMessage(r, '', (m.user_info && m.user_info.name || m.user_id) + ' joined', 'info');
  });

  app.on('jetsocket:member_removed', function (m) {
    var r = m && byChannel[m.channel];
    if (!r || !r.joined) return;
    var info = r.members[m.user_id];
    delete r.members[m.user_id];
    renderMembers(r);
    addMessage(r, '', (info && info.name || m.user_id) + ' left', 'info');
  });

  // The server forgets subscriptions with the connection; a new connection starts with
  // none, so every room goes back to "not joined".
  app.on('app:established', function () {
    $('chat-panel').hidden = false;
    ROOMS.forEach(function (r) {
      setJoined(r, false, 'not joined');
      r.toggle.disabled = false;
    });
  });
  function resetRooms() {
    ROOMS.forEach(function (r) {
      setJoined(r, false, 'not joined');
      r.toggle.disabled = true;
    });
  }
  app.on('app:disconnected', resetRooms);
  app.on('app:closed', function () {
    resetRooms();
    $('chat-panel').hidden = true;
  });

  function init() {
    build();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
