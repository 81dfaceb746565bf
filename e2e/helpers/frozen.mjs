// Consumers that stop reading, one of each kind the server serves (PRODUCT §9: a consumer
// that stops reading, on any transport, in any state of an upgrade, is cut off and delays
// no one): Engine.IO v3 and v4, long-polling and websocket, and a polling session that
// upgrades to a websocket it then never reads. Each subscribes to a channel over raw frames
// and then freezes: a polling client stops polling; a websocket client pauses its TCP
// socket, so the server's writes back up through the kernel buffers.
import { request, socketPath, wsHandshake, RawEio } from './clients.mjs';
import { RawPolling, encodePayload } from './rawpolling.mjs';

const subscribeFrame = (channel) => `421${JSON.stringify(['jetsocket:subscribe', { channel }])}`;
const isSubscribeAck = (f) => f.startsWith('431[') && JSON.parse(f.slice(3))[0]?.ok === true;

/** RawPolling4 is an Engine.IO v4 long-polling session (packets joined by \x1e). */
export class RawPolling4 {
  static async open(base) {
    const res = await request(socketPath(base, { extra: { EIO: '4' } }));
    const sid = /"sid":"([^"]+)"/.exec(res.text)?.[1];
    if (res.status !== 200 || !sid) throw new Error(`v4 polling handshake: ${res.status} ${res.text}`);
    return new RawPolling4(base, sid);
  }

  constructor(base, sid) {
    this.base = base;
    this.sid = sid;
    this.received = [];
  }

  url() { return socketPath(this.base, { extra: { EIO: '4', sid: this.sid } }); }

  post(...packets) {
    return request(this.url(), {
      method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: packets.join('\x1e'),
    });
  }

  async getUntil(pred, tries = 10) {
    for (let i = 0; i < tries; i++) {
      const found = this.received.find(pred);
      if (found) return found;
      const res = await request(this.url());
      if (res.status !== 200) throw new Error(`v4 poll: ${res.status} ${res.text}`);
      this.received.push(...res.text.split('\x1e'));
    }
    const found = this.received.find(pred);
    if (found) return found;
    throw new Error(`no matching packet after ${tries} polls; got ${JSON.stringify(this.received).slice(0, 400)}`);
  }
}

/** rawWebsocket opens a raw websocket on `url` and collects its frames (RawEio). */
async function rawWebsocket(url) {
  const res = await wsHandshake(url);
  if (!res.ws) throw new Error(`websocket refused: ${res.status} ${res.text}`);
  res.stopKeeping();
  return new RawEio(res.ws, res.early);
}

/** freeze pauses a raw websocket's TCP socket: the client reads nothing more. */
function freeze(raw) {
  raw.ws._socket.pause();
}

/** v3Polling: a socket.io-client 2.x style polling session, subscribed, then no more polls. */
export async function frozenV3Polling(base, token, channel) {
  const p = await RawPolling.open(base, token);
  await p.getUntil((f) => f.startsWith('42["jetsocket:connection_established"'));
  const posted = await p.post(encodePayload(subscribeFrame(channel)));
  if (posted.status !== 200) throw new Error(`v3 subscribe post: ${posted.status} ${posted.text}`);
  await p.getUntil(isSubscribeAck);
  return { kind: 'v3 polling', polling: p };
}

/** v4Polling: an Engine.IO v4 polling session, connected and subscribed, then no more polls. */
export async function frozenV4Polling(base, token, channel) {
  const p = await RawPolling4.open(base);
  await p.post(`40${JSON.stringify({ token })}`);
  await p.getUntil((f) => f.startsWith('42["jetsocket:connection_established"'));
  await p.post(subscribeFrame(channel));
  await p.getUntil(isSubscribeAck);
  return { kind: 'v4 polling', polling: p };
}

/** v3Websocket: a raw v3 websocket, subscribed, then paused. */
export async function frozenV3Websocket(base, token, channel) {
  const raw = await rawWebsocket(socketPath(base, { transport: 'websocket', token }));
  await raw.next((f) => f.startsWith('42["jetsocket:connection_established"'), 5000, 'v3 connection_established');
  raw.send(subscribeFrame(channel));
  await raw.next(isSubscribeAck, 5000, 'v3 subscribe ack');
  freeze(raw);
  return { kind: 'v3 websocket', raw };
}

/** v4Websocket: a raw v4 websocket, connected and subscribed, then paused. */
export async function frozenV4Websocket(base, token, channel) {
  const raw = await rawWebsocket(socketPath(base, { transport: 'websocket', extra: { EIO: '4' } }));
  await raw.next((f) => f.startsWith('0{'), 5000, 'v4 open');
  raw.send(`40${JSON.stringify({ token })}`);
  await raw.next((f) => f.startsWith('42["jetsocket:connection_established"'), 5000, 'v4 connection_established');
  raw.send(subscribeFrame(channel));
  await raw.next(isSubscribeAck, 5000, 'v4 subscribe ack');
  freeze(raw);
  return { kind: 'v4 websocket', raw };
}

/**
 * upgradeAndFreeze takes a frozen polling consumer (frozenV3Polling or frozenV4Polling,
 * with a backlog queued meanwhile) through the websocket upgrade: probe, the client's
 * upgrade packet, then the websocket is paused before it reads what the server sends.
 */
export async function upgradeAndFreeze(base, consumer) {
  const eio = consumer.kind.startsWith('v4') ? '4' : '3';
  const extra = { EIO: eio, sid: consumer.polling.sid };
  if (eio === '3') extra.b64 = '1';
  const raw = await rawWebsocket(socketPath(base, { transport: 'websocket', extra }));
  raw.send('2probe');
  await raw.next((f) => f === '3probe', 5000, `${consumer.kind} probe answer`);
  raw.send('5');
  freeze(raw);
  return { ...consumer, kind: `${consumer.kind}, upgraded mid-backlog`, raw };
}
