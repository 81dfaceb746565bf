#!/usr/bin/env node
// Jetsocket example client: logs in over HTTP, connects over socket.io with the token,
// pings once and prints every event the server sends until Ctrl-C (or, with --once,
// exits after the ping).
//
// It uses the Jetsocket JS client (public/js/jetsocket.js) over socket.io-client 2.x, which
// it passes in: Jetsocket speaks Engine.IO v3.
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import io from 'socket.io-client';

// The Jetsocket JS client, the same file the server serves at /js/jetsocket.js.
const Jetsocket = createRequire(import.meta.url)('../public/js/jetsocket.js');

const USAGE = `Usage: node index.mjs [options]

  --url <url>          server address        (env JETSOCKET_URL, default http://localhost:8080)
  --username <name>    user to log in as     (env JETSOCKET_USERNAME)
  --password <secret>  that user's password  (env JETSOCKET_PASSWORD)
  --once               exit after the first ping instead of listening for events
  --websocket          use the websocket transport only (default: polling, then upgrade)
  --subscribe <name>   subscribe to a channel while listening (repeatable)
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
        subscribe: { type: 'string', multiple: true, default: [] },
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
    channels: values.subscribe,
    appKey: process.env.JETSOCKET_APP_KEY || 'jetsocket-key',
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
 * connect starts the Jetsocket client (public/js/jetsocket.js). Its token function logs in
 * again when the token is about to expire, so every reconnect and every refresh gets a
 * valid one. Resolves with the connection_established payload ({socket_id, user_id});
 * rejects when the server refuses the token, or (with --once) when the first attempt fails,
 * or after the timeout.
 */
function connect(opts, session) {
  let current = session;
  const token = async () => {
    if (Date.parse(current.expires_at) - Date.now() < 60_000) current = await login(opts);
    return current.token;
  };
  const client = new Jetsocket(opts.appKey, {
    host: opts.url,
    token,
    io,
    transports: opts.websocket ? ['websocket'] : ['polling', 'websocket'],
    connectTimeoutMs: opts.timeoutMs,
    autoConnect: false,
  });
  // Every event from the server, channels' and the connection's own.
  client.bind_global((event, data) => print(`<- ${event} ${json(data)}`.trimEnd()));

  const established = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const why = client.connection.reason ? describeFailure(client.connection.reason) : 'no connection';
      reject(new CliError(`${why} within ${opts.timeoutMs / 1000} s`));
    }, opts.timeoutMs);
    const done = (fn, value) => { clearTimeout(timer); fn(value); };
    client.connection.bind('connected', (info) => done(resolve, info));
    client.connection.bind('failed', (reason) => done(reject, new CliError(describeFailure(reason))));
    // A one-shot run fails fast; a long-running one lets the client retry (server starting).
    client.connection.bind('unavailable', (reason) => { if (opts.once) done(reject, new CliError(describeFailure(reason))); });
  });
  client.connect();
  return { client, established };
}

function describeFailure(reason) {
  if (reason.status === 401) return 'connection refused (401): the server did not accept the token';
  return `connection failed: ${reason.error}${reason.status ? ` (HTTP ${reason.status})` : ''}`;
}

/** ping asks the server for a pong and resolves with {answer, ms}. */
async function ping(client) {
  const started = process.hrtime.bigint();
  try {
    const answer = await client.connection.ping();
    return { answer, ms: Number(process.hrtime.bigint() - started) / 1e6 };
  } catch (err) {
    throw new CliError(err.message);
  }
}

/** watch keeps a long-running client informed about its connection. */
function watch(client, finish) {
  client.connection.bind('state_change', ({ previous, current }) => {
    if (current === 'connecting' || current === 'unavailable') print(`-- ${current} (was ${previous}), reconnecting...`);
    if (current === 'connected' && previous !== 'initialized') print(`-- reconnected: socket_id=${client.connection.socket_id}`);
  });
  client.connection.bind('failed', (reason) => finish(1, `${describeFailure(reason)}; log in again`));
}

async function main() {
  let client = null;
  let finished = false;
  // finish closes the connection and ends the process with `code`, printing `error` if given.
  const finish = (code, error) => {
    if (finished) return;
    finished = true;
    if (error) process.stderr.write(`error: ${error}\n`);
    client?.disconnect();
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

    const conn = connect(opts, session);
    client = conn.client;
    const info = await conn.established;
    if (finished) return;
    print(`connected: socket_id=${info.socket_id} user_id=${info.user_id} transport=${client.connection.transportName()}`);

    const { answer, ms } = await ping(client);
    print(`ping: round trip ${ms.toFixed(1)} ms, answer ${json(answer)}`);

    if (opts.once) return finish(0);
    for (const name of opts.channels) {
      const ch = client.subscribe(name);
      ch.bind('jetsocket:subscription_succeeded', () => print(`-- subscribed to ${name}`));
      ch.bind('jetsocket:subscription_error', (e) => print(`-- subscribe ${name} refused: ${e.status} ${e.code}`));
    }
    watch(client, finish);
    print('-- listening for events; press Ctrl-C to exit');
  } catch (err) {
    if (err instanceof CliError) finish(err.exitCode, err.message);
    else finish(1, err.stack || String(err));
  }
}

main();
