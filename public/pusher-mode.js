// pusher-js mode of the demo (/?client=pusher-js&key=<APP_KEY>): the page's chat runs on
// pusher-js 8 over the Pusher protocol endpoint (/app/{key}) instead of the Jetsocket
// client, with channels authorized by POST /pusher/auth and the login's Bearer token.
// Same rooms, same server: a pusher-js tab and a Jetsocket tab share them.
//
// jetsocketPusherClient returns an object with the part of the Jetsocket client's API
// the demo uses (connection.bind/transportName, subscribe/unsubscribe, bind, bind_global,
// connect/disconnect, channel bind/unbind/members/trigger), mapping the Jetsocket
// client's "jetsocket:" events to pusher-js's "pusher:" ones.
(function () {
  'use strict';

  // pusher-js mode is asked for in the page's query; the app key is public in Pusher's
  // model (every client has it), so the page takes it from the query as well.
  // The build in vendor/ (pusher-js 8 exposes no version on the Pusher constructor).
  var VENDORED = 'pusher-js 8.6.0';

  function pusherMode() {
    var q = new URLSearchParams(location.search);
    if (q.get('client') !== 'pusher-js') return null;
    return { key: q.get('key') || '' };
  }

  function pusherEvent(name) {
    return name.indexOf('jetsocket:') === 0 ? 'pusher:' + name.slice('jetsocket:'.length) : name;
  }

  function wrapChannel(ch) {
    return {
      name: ch.name,
      get members() { return ch.members; },
      bind: function (name, fn) { ch.bind(pusherEvent(name), fn); return this; },
      unbind: function (name, fn) {
        if (name === undefined) ch.unbind(); else ch.unbind(pusherEvent(name), fn);
        return this;
      },
      // pusher-js's trigger answers at once whether the event was sent; the server
      // reports a refusal as pusher:error on the connection (logged by the page).
      trigger: function (name, data) {
        return Promise.resolve(ch.trigger(name, data) ? { ok: true } : { ok: false, error: 'not subscribed' });
      },
    };
  }

  function jetsocketPusherClient(key, token) {
    var secure = location.protocol === 'https:';
    var port = Number(location.port) || (secure ? 443 : 80);
    var p = new window.Pusher(key, {
      cluster: '', wsHost: location.hostname, wsPort: port, wssPort: port, forceTLS: secure,
      enabledTransports: ['ws', 'wss'], disableStats: true,
      channelAuthorization: {
        endpoint: '/pusher/auth', transport: 'ajax',
        headersProvider: function () { return { Authorization: 'Bearer ' + token() }; },
      },
    });
    var channels = {};
    return {
      pusher: p,
      connection: {
        bind: function (name, fn) {
          if (name === 'connected') {
            p.connection.bind('connected', function () { fn({ socket_id: p.connection.socket_id }); });
            return;
          }
          if (name === 'error') {
            p.connection.bind('error', function (e) {
              var d = (e && e.data) || {};
              fn({ error: d.message || (e && e.error && e.error.type) || (e && e.type) || 'error', status: d.code });
            });
            return;
          }
          p.connection.bind(name, fn);
        },
        transportName: function () { return VENDORED + ' (protocol 7, /app/{key})'; },
        ping: function () { return Promise.reject(new Error('ping: not in pusher-js mode (pusher-js pings by itself)')); },
      },
      subscribe: function (name) {
        channels[name] = channels[name] || wrapChannel(p.subscribe(name));
        return channels[name];
      },
      unsubscribe: function (name) { delete channels[name]; p.unsubscribe(name); },
      bind: function (name, fn) { p.bind(pusherEvent(name), fn); },
      bind_global: function (fn) { p.bind_global(fn); },
      connect: function () { p.connect(); },
      disconnect: function () { p.disconnect(); },
    };
  }

  window.jetsocketPusherMode = { mode: pusherMode, client: jetsocketPusherClient };
})();
