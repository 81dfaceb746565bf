#!/usr/bin/env node
// Jetsocket example client: logs in over HTTP, connects over socket.io with the token,
// pings once and prints every event the server sends until Ctrl-C (or, with --once,
// exits after the ping).
//
// Jetsocket speaks Engine.IO v3, so this uses socket.io-client 2.x.
import { parseArgs } from 'node:util';
import io from 'socket.io-client';

const USAGE = `Usage: node index.mjs [options]

  --url <url>          server address        (env JETSOCKET_URL, default http://localhost:8080)
  --username <name>    user to log in as     (env JETSOCKET_USERNAME)
  --password <secret>  that user's password  (env JETSOCKET_PASSWORD)
  --once               exit after the first ping instead of listening for events
  --websocket          use the websocket transport only (default: polling, then upgrade)
  --timeout <seconds>  how long to wait for login, connection and ping (default 10)
  -h, --help           show this help

Exit code 0 on success, 1 when the login, the connection or the ping fails, 2 on bad usage.`;

/** A failure the user should see as one clear line, with the exit code to use. */
class CliError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

const print = (line) => process.stdout.write(line + '\n');
const json = (value) => (value === undefined ? '' : JSON.stringify(value));

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        once: { type: 'boolean', default: false },
        websocket: { type: 'boolean', default: false },
        timeout: { type: 'string', default: '10' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new CliError(`${err.message}\n\n${USAGE}`, 2);
  }
  if (values.help) {
    print(USAGE);
    process.exit(0);
  }

  const opts = {
    url: (values.url || process.env.JETSOCKET_URL || 'http://localhost:8080').replace(/\/+$/, ''),
    username: values.username || process.env.JETSOCKET_USERNAME || '',
    password: values.password || process.env.JETSOCKET_PASSWORD || '',
    once: values.once,
    websocket: values.websocket,
    timeoutMs: Number(values.timeout) * 1000,
  };
  if (!opts.username || !opts.password) {
    throw new CliError(`a username and a password are required\n\n${USAGE}`, 2);
  }
  if (!(opts.timeoutMs > 0)) throw new CliError(`--timeout must be a positive number of seconds`, 2);
  try {
    new URL(opts.url);
  } catch {
    throw new CliError(`--url is not a valid URL: ${opts.url}`, 2);
  }
  return opts;
}

/** login posts the credentials to /login and returns {token, expires_at, user}. */
async function login({ url, username, password, timeoutMs }) {
  let res;
  try {
    res = await fetch(`${url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new CliError(`cannot reach ${url}: ${err.cause?.code || err.cause?.message || err.message}`);
  }
  const body = await res.json().catch(() => ({}));
  if (res.ok && body.token) return body;

  switch (res.status) {
    case 401:
      throw new CliError(`login refused (401): wrong username or password for "${username}"`);
    case 429: {
      const retry = res.headers.get('retry-after');
      throw new CliError(`login refused (429): too many attempts${retry ? `, retry in ${retry} s` : ''}`);
    }
    default:
      throw new CliError(`login failed (HTTP ${res.status}): ${body.message || body.error || res.statusText}`);
  }
}

/**
 * handshakeStatus digs the HTTP status out of a socket.io-client 2.x connect_error:
 * polling reports it as a number in err.description, websocket inside a ws error message.
 */
function handshakeStatus(err) {
  const d = err?.description;
  if (typeof d === 'number') return d;
  const m = /Unexpected server response: (\d+)/.exec(d?.message || '');
  return m ? Number(m[1]) : 0;
}

function describeConnectError(err) {
  const status = handshakeStatus(err);
  if (status === 401) return 'connection refused (401): the server did not accept the token';
  return `connection failed: ${err?.message || err}${status ? ` (HTTP ${status})` : ''}`;
}

/** logAllEvents prints every event from the server (2.x has no onAny: wrap onevent). */
function logAllEvents(socket) {
  const onevent = socket.onevent;
  socket.onevent = function (packet) {
    const [name, ...args] = packet.data || [];
    print(`<- ${name} ${args.map(json).join(' ')}`.trimEnd());
    return onevent.call(this, packet);
  };
}

/**
 * connect opens the socket and resolves with the connection_established payload
 * ({socket_id, user_id}); rejects on a refused handshake or after the timeout.
 */
function connect({ url, websocket, once, timeoutMs }, token) {
  const socket = io(url, {
    query: { token },
    transports: websocket ? ['websocket'] : ['polling', 'websocket'],
    reconnection: !once, // a one-shot run should fail fast, not retry
    forceNew: true,
  });
  logAllEvents(socket);

  const established = new Promise((resolve, reject) => {
    let lastError = null;
    const timer = setTimeout(() => {
      const why = socket.connected ? 'connected, but no jetsocket:connection_established arrived'
        : lastError ? describeConnectError(lastError) : 'no connection';
      reject(new CliError(`${why} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const done = (fn, value) => {
      clearTimeout(timer);
      socket.off('connect_error', onError);
      fn(value);
    };
    const onError = (err) => {
      lastError = err;
      // A refused token will not get better by retrying; other errors may (server starting).
      if (once || handshakeStatus(err) === 401) done(reject, new CliError(describeConnectError(err)));
    };
    socket.on('connect_error', onError);
    socket.once('jetsocket:connection_established', (info) => done(resolve, info));
  });
  return { socket, established };
}

/** ping emits jetsocket:ping and resolves with {answer, ms} when the server acks. */
function ping(socket, timeoutMs) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const timer = setTimeout(() => reject(new CliError(`no answer to jetsocket:ping within ${timeoutMs / 1000} s`)), timeoutMs);
    socket.emit('jetsocket:ping', (answer) => {
      clearTimeout(timer);
      resolve({ answer, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    });
  });
}

/** watch keeps a long-running client informed about disconnects and reconnects. */
function watch(socket, finish) {
  socket.on('disconnect', (reason) => {
    if (reason === 'io server disconnect') {
      finish(1, `the server closed the connection`);
    } else if (reason !== 'io client disconnect') {
      print(`-- disconnected (${reason}), reconnecting...`);
    }
  });
  socket.on('reconnect', (attempt) => print(`-- reconnected after ${attempt} attempt(s)`));
  socket.on('connect_error', (err) => {
    if (handshakeStatus(err) === 401) finish(1, `${describeConnectError(err)}; log in again`);
  });
}

async function main() {
  let socket = null;
  let finished = false;
  // finish closes the socket and ends the process with `code`, printing `error` if given.
  const finish = (code, error) => {
    if (finished) return;
    finished = true;
    if (error) process.stderr.write(`error: ${error}\n`);
    socket?.close();
    process.exitCode = code;
    // socket.io may hold a polling request open for a moment; do not wait for it.
    setTimeout(() => process.exit(code), 500).unref();
  };
  process.on('SIGINT', () => {
    if (finished) process.exit(130); // second Ctrl-C: leave now
    print('\n-- closing');
    finish(0);
  });
  process.on('SIGTERM', () => finish(0));

  try {
    const opts = parseOptions(process.argv.slice(2));

    const session = await login(opts);
    const who = session.user ? `${session.user.name || opts.username} (user id ${session.user.id})` : opts.username;
    print(`logged in as ${who}; token expires at ${session.expires_at}`);

    const conn = connect(opts, session.token);
    socket = conn.socket;
    const info = await conn.established;
    if (finished) return;
    print(`connected: socket_id=${info.socket_id} user_id=${info.user_id} transport=${socket.io.engine.transport.name}`);

    const { answer, ms } = await ping(socket, opts.timeoutMs);
    print(`ping: round trip ${ms.toFixed(1)} ms, answer ${json(answer)}`);

    if (opts.once) return finish(0);
    watch(socket, finish);
    print('-- listening for events; press Ctrl-C to exit');
  } catch (err) {
    if (err instanceof CliError) finish(err.exitCode, err.message);
    else finish(1, err.stack || String(err));
  }
}

main();
