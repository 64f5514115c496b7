// The websocket session with the gateway: handshake with the token as a subprotocol, subscribe,
// resume after a reconnect, exponential backoff with jitter, and telling a refused token (stop)
// from a network problem (keep trying).
//
// States (exactly these strings): 'connecting' (first attempt), 'connected' (hello received),
// 'reconnecting' (lost, waiting or retrying), 'refused' (the token was refused: stop).

import { backoffDelay } from './backoff.js';

export const PROTOCOL = 'twin.v1';
const KEEPALIVE_MS = 15_000; // an end-to-end ping this often ...
const SILENCE_MS = 40_000; // ... and a connection that stays silent this long is dead
const STABLE_MS = 10_000; // a connection that lived this long resets the backoff
const CLOSE_TOKEN_EXPIRED = 4001;

export class TwinConnection {
  /**
   * @param {object} o
   * @param {string} o.url websocket URL (ws://host/ws)
   * @param {string} o.token JWT
   * @param {(msg: object) => void} o.onMessage every parsed server message
   * @param {(state: string, detail: string) => void} o.onState connection state changes
   * @param {() => ({epoch, seq}|null)} o.resumePoint where to resume from after a reconnect
   * @param {() => Promise<{refused: boolean, reason?: string}>} o.probe after a failed handshake
   *        (browsers hide its HTTP status), ask REST whether the token is refused
   */
  constructor({ url, token, onMessage, onState, resumePoint, probe, WebSocketImpl, timers, random, now }) {
    this.url = url;
    this.token = token;
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.resumePoint = resumePoint || (() => null);
    this.probe = probe || (async () => ({ refused: false }));
    this.WebSocketImpl = WebSocketImpl || globalThis.WebSocket;
    this.timers = timers || { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h), setInterval: (f, ms) => setInterval(f, ms), clearInterval: (h) => clearInterval(h) };
    this.random = random || Math.random;
    this.now = now || (() => Date.now());
    this.state = null;
    this.detail = '';
    this.attempt = 0;
    this.ws = null;
    this.retryTimer = null;
    this.keepalive = null;
    this.stopped = false;
    this.hello = null;
    this.nextId = 1;
    this.lastMessageAt = 0;
    this.openedAt = null;
    this.nextRetryAt = null;
  }

  start() {
    this.stopped = false;
    this._set('connecting', 'Connecting…');
    this._open();
  }

  /** Stop for good (no reconnect). */
  stop() {
    this.stopped = true;
    this._clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000, 'bye');
      } catch {
        /* already closed */
      }
    }
  }

  /** Send a message if connected; returns false otherwise. */
  send(message) {
    if (!this.ws || this.ws.readyState !== 1 || this.state !== 'connected') return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** A request id for messages whose reply we want to match (ack, clear, ping). */
  requestId(prefix = 'req') {
    return `${prefix}-${this.nextId++}`;
  }

  _set(state, detail = '') {
    const changed = state !== this.state || detail !== this.detail;
    this.state = state;
    this.detail = detail;
    if (changed) this.onState(state, detail);
  }

  _open() {
    if (this.stopped) return;
    this.retryTimer = null;
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url, [PROTOCOL, `bearer.${this.token}`]);
    } catch (err) {
      this._lost(null, false, String(err && err.message ? err.message : err));
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.openedAt = this.now();
      this.lastMessageAt = this.now();
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.lastMessageAt = this.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg && msg.type === 'hello') {
        this.hello = msg;
        this._set('connected', `Connected as ${msg.user} (${msg.role})`);
        const subscribe = { type: 'subscribe' };
        const resume = this.resumePoint();
        if (resume && resume.epoch) subscribe.resume = { epoch: resume.epoch, seq: resume.seq };
        ws.send(JSON.stringify(subscribe));
        this._startKeepalive(ws);
      }
      this.onMessage(msg);
    };
    ws.onerror = () => {
      /* onclose follows with the details we have */
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._lost(event, opened, event && event.reason ? event.reason : '');
    };
  }

  _startKeepalive(ws) {
    this._stopKeepalive();
    this.keepalive = this.timers.setInterval(() => {
      if (this.ws !== ws) return;
      if (this.now() - this.lastMessageAt > SILENCE_MS) {
        try {
          ws.close(4000, 'no answer from the gateway');
        } catch {
          /* ignore */
        }
        // Some browsers take long to fire onclose on a dead TCP connection: do not wait for it.
        this.ws = null;
        this._lost({ code: 1006, reason: 'silent' }, true, 'no answer from the gateway');
        return;
      }
      try {
        ws.send(JSON.stringify({ type: 'ping', id: this.requestId('ping') }));
      } catch {
        /* closing */
      }
    }, KEEPALIVE_MS);
  }

  _stopKeepalive() {
    if (this.keepalive !== null) this.timers.clearInterval(this.keepalive);
    this.keepalive = null;
  }

  _clearTimers() {
    this._stopKeepalive();
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  async _lost(event, opened, reason) {
    this._clearTimers();
    if (this.stopped) return;
    const code = event ? event.code : 1006;
    if (opened && this.openedAt !== null && this.now() - this.openedAt >= STABLE_MS) this.attempt = 0;
    this.openedAt = null;
    if (this.state === 'connected') this._set('reconnecting', 'Connection lost');
    // A refused handshake looks like any network failure to a browser (code 1006, no status): ask
    // REST. An expired token (4001) will be refused the same way.
    if (!opened || code === CLOSE_TOKEN_EXPIRED) {
      let verdict = { refused: false };
      try {
        verdict = (await this.probe()) || verdict;
      } catch {
        verdict = { refused: false };
      }
      if (this.stopped) return;
      if (verdict.refused) {
        this.stopped = true;
        this._set('refused', verdict.reason || 'The gateway refused the token');
        return;
      }
    }
    const delay = backoffDelay(this.attempt, this.random);
    this.attempt += 1;
    this.nextRetryAt = this.now() + delay;
    const why = reason ? `${reason}; ` : code && code !== 1006 ? `closed (${code}); ` : '';
    this._set('reconnecting', `${why}retrying in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = this.timers.setTimeout(() => this._open(), delay);
  }
}

/**
 * A probe for TwinConnection: GET `${http}/api/layout` with the token; 401 means refused.
 * `fetchImpl` is injectable for tests.
 */
export function restProbe(http, token, fetchImpl = globalThis.fetch) {
  return async () => {
    const res = await fetchImpl(`${http}/api/layout`, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
    if (res.status === 401) return { refused: true, reason: await reasonOf(res) };
    return { refused: false };
  };
}

/** The one-line reason of a refusal (FastAPI `{"detail": "..."}` or a plain body). */
export async function reasonOf(res) {
  let text = '';
  try {
    text = await res.text();
  } catch {
    return `HTTP ${res.status}`;
  }
  try {
    const body = JSON.parse(text);
    if (body && typeof body.detail === 'string') return body.detail;
  } catch {
    /* not JSON */
  }
  return text.trim().slice(0, 200) || `HTTP ${res.status}`;
}
