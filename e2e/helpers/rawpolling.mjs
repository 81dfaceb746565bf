// Raw Engine.IO v3 long-polling, request by request, for tests that send what no client
// would: broken payloads, wrong content types, requests for sids that are not theirs.
import { request, socketPath } from './clients.mjs';

/** encodePayload frames text packets as Engine.IO v3 text payloads do: `<length>:<packet>`. */
export const encodePayload = (...packets) => packets.map((p) => `${p.length}:${p}`).join('');

/**
 * decodePayload splits a text payload into packets; anything that does not parse ends the
 * list with {garbage: rest}.
 */
export function decodePayload(text) {
  const out = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    const n = Number(text.slice(i, colon));
    if (colon < 0 || !/^\d+$/.test(text.slice(i, colon)) || colon + 1 + n > text.length) {
      out.push({ garbage: text.slice(i) });
      break;
    }
    out.push(text.slice(colon + 1, colon + 1 + n));
    i = colon + 1 + n;
  }
  return out;
}

/**
 * RawPolling is one polling session opened the way socket.io-client 2.x opens it (text
 * payloads, b64=1). A dropped connection resolves as status 0; only a hang rejects.
 */
export class RawPolling {
  static async open(base, token) {
    const res = await request(socketPath(base, { token, extra: { b64: '1' } }));
    const sid = /"sid":"([^"]+)"/.exec(res.text)?.[1];
    if (res.status !== 200 || !sid) throw new Error(`polling handshake: ${res.status} ${res.text}`);
    const p = new RawPolling(base, sid);
    p.received.push(...decodePayload(res.text));
    return p;
  }

  constructor(base, sid) {
    this.base = base;
    this.sid = sid;
    this.received = [];
  }

  url(extra = {}) { return socketPath(this.base, { extra: { sid: this.sid, b64: '1', ...extra } }); }

  /** get long-polls once; the packets it brings are also kept in `received`. */
  async get({ timeoutMs = 10_000 } = {}) {
    const res = await request(this.url(), { timeoutMs }).catch(dropped);
    if (res.status === 200) res.packets = decodePayload(res.text);
    if (res.packets) this.received.push(...res.packets);
    return res;
  }

  /** post sends a raw body (a string or Buffer) with a content type. */
  post(body, { contentType = 'text/plain;charset=UTF-8', timeoutMs = 10_000 } = {}) {
    return request(this.url(), { method: 'POST', headers: { 'content-type': contentType }, body, timeoutMs }).catch(dropped);
  }

  /** getUntil long-polls until a packet matching pred arrives (or `tries` polls). */
  async getUntil(pred, tries = 5) {
    for (let i = 0; i < tries; i++) {
      const found = this.received.find(pred);
      if (found) return found;
      const res = await this.get();
      if (res.status !== 200) throw new Error(`poll for ${this.sid}: ${res.status} ${res.text}`);
    }
    const found = this.received.find(pred);
    if (found) return found;
    throw new Error(`no matching packet after ${tries} polls; got ${JSON.stringify(this.received).slice(0, 400)}`);
  }

  /** close ends the session as a client does: a CLOSE packet. */
  close() { return this.post(encodePayload('1')); }
}

function dropped(err) {
  if (/timed out/.test(err.message)) throw err;
  return { status: 0, text: `connection dropped: ${err.message}` };
}
