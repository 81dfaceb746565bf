// Reference server for the benchmarks: what a Node shop would run instead of Jetsocket,
// socket.io 4 with a JWT middleware, written idiomatically (not tuned, not slowed). It
// keeps Jetsocket's contract for the parts the load tool uses: the token in the
// handshake query, jetsocket:connection_established, jetsocket:subscribe with an ack,
// and events triggered through a Pusher-signed POST /apps/<id>/events.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { Server } = require('socket.io');
const jwt = require('jsonwebtoken');

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`reference server: ${name} is required`);
    process.exit(2);
  }
  return v;
}

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST || '127.0.0.1';
const JWT_SECRET = required('JWT_SECRET');
const APP_ID = required('APP_ID');
const APP_KEY = required('APP_KEY');
const APP_SECRET = required('APP_SECRET');
const MAX_BODY = 1 << 20;
const CHANNEL_RE = /^[-a-zA-Z0-9_=@,.;]+$/;

const httpServer = http.createServer(handleHTTP);
const io = new Server(httpServer, {
  allowEIO3: true, // socket.io-client 2.x speaks Engine.IO v3, as with Jetsocket
  pingInterval: 25000,
  pingTimeout: 60000,
  maxHttpBufferSize: 1e6,
});

io.use((socket, next) => {
  try {
    // The token in the query (every client) or in `auth` (socket.io-client 3.x/4.x), as Jetsocket takes it.
    const token = socket.handshake.auth?.token ?? socket.handshake.query.token ?? '';
    socket.data.claims = jwt.verify(String(token), JWT_SECRET, { algorithms: ['HS256'] });
    next();
  } catch {
    next(new Error('invalid_token'));
  }
});

io.on('connection', (socket) => {
  socket.emit('jetsocket:connection_established', { socket_id: socket.id, user_id: String(socket.data.claims.sub) });

  socket.on('jetsocket:subscribe', (payload, ack) => {
    const channel = payload && typeof payload.channel === 'string' ? payload.channel : '';
    const reply = typeof ack === 'function' ? ack : () => {};
    if (!CHANNEL_RE.test(channel) || channel.length > 164) {
      const err = { channel, status: 400, error: 'invalid channel name' };
      reply({ ok: false, ...err });
      socket.emit('jetsocket:subscription_error', err);
      return;
    }
    socket.join(channel);
    reply({ ok: true, channel });
    socket.emit('jetsocket:subscription_succeeded', { channel });
  });

  socket.on('jetsocket:unsubscribe', (payload) => {
    if (payload && typeof payload.channel === 'string') socket.leave(payload.channel);
  });
});

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// Pusher signs METHOD\nPATH\nQUERY (every parameter but auth_signature, sorted by key).
function signatureError(method, path, query, body) {
  if (query.get('auth_key') !== APP_KEY) return 'unknown auth_key';
  if (query.get('auth_version') !== '1.0') return 'auth_version must be 1.0';
  const ts = Number(query.get('auth_timestamp'));
  if (!Number.isFinite(ts) || Math.abs(Date.now() / 1000 - ts) > 600) return 'auth_timestamp too old or missing';
  if (body.length > 0 && query.get('body_md5') !== crypto.createHash('md5').update(body).digest('hex')) return 'body_md5 mismatch';
  const params = [...query.keys()].filter((k) => k !== 'auth_signature').sort().map((k) => `${k}=${query.get(k)}`).join('&');
  const want = crypto.createHmac('sha256', APP_SECRET).update(`${method}\n${path}\n${params}`).digest();
  const got = Buffer.from(query.get('auth_signature') || '', 'hex');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return 'invalid signature';
  return '';
}

function handleHTTP(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
  const m = /^\/apps\/([^/]+)\/events$/.exec(url.pathname);
  if (!m || req.method !== 'POST') return send(res, 404, { error: 'not_found' });
  if (m[1] !== APP_ID) return send(res, 403, { error: 'unknown_app' });

  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      send(res, 413, { error: 'too_large' });
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    const body = Buffer.concat(chunks);
    const sigErr = signatureError('POST', url.pathname, url.searchParams, body);
    if (sigErr) return send(res, 401, { error: 'invalid_signature', message: sigErr });
    let ev;
    try {
      ev = JSON.parse(body.toString('utf8'));
    } catch {
      return send(res, 400, { error: 'invalid_request', message: 'body is not JSON' });
    }
    const channels = ev && (Array.isArray(ev.channels) ? ev.channels : typeof ev.channel === 'string' ? [ev.channel] : null);
    if (!channels || !channels.length || typeof ev.name !== 'string' || typeof ev.data !== 'string') {
      return send(res, 400, { error: 'invalid_request', message: 'need name, data (string) and channel or channels' });
    }
    let data = ev.data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      // not JSON: subscribers get the string
    }
    for (const channel of channels) {
      let target = io.to(channel);
      if (typeof ev.socket_id === 'string') target = target.except(ev.socket_id);
      target.emit(ev.name, { channel, data });
    }
    send(res, 200, {});
  });
}

httpServer.listen(PORT, HOST, () => {
  console.log(`listening ${httpServer.address().port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    io.close();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
