import { io } from 'socket.io-client';
import { createHmac } from 'node:crypto';
const SECRET = 'e2e-test-secret-0123456789abcdef0123456789abcdef';
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function mint(sub, exp = 3600) { const now = Math.floor(Date.now() / 1000); const i = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + exp })}`; return `${i}.${createHmac('sha256', SECRET).update(i).digest('base64url')}`; }
const url = process.argv[2];
async function one(label, opts) {
  const s = io(url, { forceNew: true, reconnection: false, ...opts });
  const log = [];
  s.on('connect', () => log.push('connect'));
  s.on('connect_error', (e) => log.push(`connect_error ${e.message} ${JSON.stringify(e.data)}`));
  s.on('jetsocket:connection_established', (d) => log.push('est'));
  s.on('tick', (d) => log.push(`tick${d.n}`));
  s.on('broadcast', (d) => log.push(`bc ${JSON.stringify(d)}`));
  s.io.engine?.on?.('upgrade', () => log.push('upgrade'));
  s.on('connect', () => { s.io.engine.on('upgrade', (t) => log.push(`upgrade ${t.name}`)); s.emit('jetsocket:ping', (a) => log.push(`ack ${JSON.stringify(a)}`)); s.emit('broadcast', { x: 1 }); });
  await new Promise((r) => setTimeout(r, 3500));
  console.log(label, log.join(' | '), s.io.engine?.transport?.name);
  s.close();
}
await one('default query token', { query: { token: mint('a') } });
await one('ws only', { query: { token: mint('b') }, transports: ['websocket'] });
await one('auth token', { auth: { token: mint('c') } });
await one('auth expired', { auth: { token: mint('d', -100) } });
await one('query bad', { query: { token: 'x.y.z' } });
await one('no token', {});
process.exit(0);
