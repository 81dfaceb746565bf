// Jetsocket demo chat: one room per channel type, on the page's Jetsocket client (app.js).
//
//   chat                          public: anyone connected; backends publish "message"
//   private-group-staff           private: group "staff" (alice, bob); client events
//   presence-lobby                presence: anyone, with the member list; client events
//   private-encrypted-group-staff end-to-end encrypted: staff with the encrypted-channels
//                                 permission (alice); backends publish encrypted
//                                 "message" events, decrypted by the client
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
      r.ch = null; // the Jetsocket channel while joined
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
    if (!joined) renderMembers(r);
  }

  function addMessage(r, who, text, kind) {
    var item = el('li', 'msg' + (kind ? ' msg-' + kind : ''));
    item.appendChild(el('span', 'msg-who', who));
    item.appendChild(el('span', 'msg-text', text));
    r.list.appendChild(item);
    while (r.list.children.length > MAX_MESSAGES) r.list.removeChild(r.list.firstChild);
    r.list.scrollTop = r.list.scrollHeight;
  }

  // renderMembers lists the presence channel's members (channel.members of the client).
  function renderMembers(r) {
    if (!r.memberList) return;
    r.memberList.textContent = '';
    if (!r.joined || !r.ch || !r.ch.members) return;
    var all = [];
    r.ch.members.each(function (m) { all.push(m); });
    all.sort(function (x, y) { return x.id < y.id ? -1 : x.id > y.id ? 1 : 0; });
    all.forEach(function (m) {
      var info = m.info || {};
      r.memberList.appendChild(el('li', 'member', info.name ? info.name + ' (' + m.id + ')' : m.id));
    });
  }

  // ---------------------------------------------------------------- actions

  // join subscribes the room's channel with the Jetsocket client, which keeps it across
  // reconnects (subscription_succeeded fires again after each) until leave().
  function join(r) {
    var client = app.client();
    if (!client) return;
    r.toggle.disabled = true;
    r.state.textContent = 'joining';
    var ch = client.subscribe(r.channel);
    r.ch = ch;
    ch.unbind();
    ch.bind('jetsocket:subscription_succeeded', function () {
      r.toggle.disabled = false;
      setJoined(r, true, 'joined');
      renderMembers(r);
    });
    ch.bind('jetsocket:subscription_error', function (err) {
      r.toggle.disabled = false;
      client.unsubscribe(r.channel); // a refusal is final for the demo: no retry on reconnect
      setJoined(r, false, 'error ' + err.status + ': ' + err.error);
    });
    ch.bind('jetsocket:member_added', function (m) {
      renderMembers(r);
      addMessage(r, '', (m.info && m.info.name || m.id) + ' joined', 'info');
    });
    ch.bind('jetsocket:member_removed', function (m) {
      renderMembers(r);
      addMessage(r, '', (m.info && m.info.name || m.id) + ' left', 'info');
    });
    // Backend messages; on the encrypted channel the client has decrypted them already.
    ch.bind('message', function (data) {
      addMessage(r, r.kind === 'encrypted' ? 'backend, decrypted' : 'backend', textOf(data));
    });
    // After a reconnect (or a gap) the client asked for what it missed: say when the
    // server could not replay it all, so the reader knows the room may be incomplete.
    ch.bind('jetsocket:recovery', function (rec) {
      if (!rec.recovered) {
        addMessage(r, '', 'Messages sent while you were offline could not be recovered: some may be missing. Leave and join again, or reload, to start fresh.', 'notice');
      } else if (rec.replayed > 0) {
        addMessage(r, '', rec.replayed + ' message' + (rec.replayed === 1 ? '' : 's') + ' sent while you were offline recovered', 'info');
      }
    });
    ch.bind('jetsocket:decryption_error', function () {
      addMessage(r, 'backend', 'a message that does not decrypt with this channel\u2019s key', 'error');
    });
    ch.bind('client-message', function (data, meta) {
      var member = ch.members && ch.members.get(meta.user_id);
      addMessage(r, member && member.info && member.info.name ? member.info.name : 'user ' + meta.user_id, textOf(data));
    });
  }

  function leave(r) {
    var client = app.client();
    if (client) client.unsubscribe(r.channel);
    r.ch = null;
    setJoined(r, false, 'not joined');
  }

  function send(r) {
    var text = r.input.value.trim();
    if (!text || !r.ch) return;
    r.input.value = '';
    r.ch.trigger('client-message', { text: text }).then(function (ack) {
      if (ack && ack.ok) addMessage(r, 'me', text, 'mine');
      else addMessage(r, 'not sent', (ack && ack.error) || 'refused', 'error');
    }, function (err) {
      addMessage(r, 'not sent', err.message, 'error');
    });
  }

  function textOf(data) {
    if (data && typeof data === 'object' && typeof data.text === 'string') return data.text;
    return typeof data === 'string' ? data : JSON.stringify(data);
  }

  // ---------------------------------------------------------------- lifecycle

  // A new connection: the rooms can be joined (joined ones come back by themselves).
  app.on('app:established', function () {
    $('chat-panel').hidden = false;
    ROOMS.forEach(function (r) { r.toggle.disabled = false; });
  });
  // The page closed the client (log out): every room starts over.
  app.on('app:closed', function () {
    ROOMS.forEach(function (r) {
      r.ch = null;
      setJoined(r, false, 'not joined');
      r.toggle.disabled = true;
    });
    $('chat-panel').hidden = true;
  });

  function init() {
    build();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
