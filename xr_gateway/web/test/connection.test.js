import { beforeEach, describe, expect, it } from 'vitest';
import { TwinConnection, reasonOf, restProbe } from '../src/connection.js';

class FakeSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {}
  // test helpers
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function fakeTimers() {
  const t = { now: 0, queue: [], nextId: 1 };
  t.setTimeout = (f, ms) => {
    const id = t.nextId++;
    t.queue.push({ id, at: t.now + ms, f });
    return id;
  };
  t.clearTimeout = (id) => {
    t.queue = t.queue.filter((x) => x.id !== id);
  };
  t.setInterval = () => t.nextId++;
  t.clearInterval = () => {};
  t.runNext = () => {
    t.queue.sort((a, b) => a.at - b.at);
    const next = t.queue.shift();
    t.now = next.at;
    next.f();
    return next;
  };
  return t;
}

const flush = () => new Promise((r) => setTimeout(r, 0));
let timers;
let states;
let messages;
let probeVerdict;
let resume;
const make = () =>
  new TwinConnection({
    url: 'ws://gw/ws',
    token: 'jwt',
    onMessage: (m) => messages.push(m),
    onState: (s, d) => states.push([s, d]),
    resumePoint: () => resume,
    probe: async () => probeVerdict,
    WebSocketImpl: FakeSocket,
    timers,
    random: () => 0.5,
    now: () => timers.now,
  });

beforeEach(() => {
  FakeSocket.all = [];
  timers = fakeTimers();
  states = [];
  messages = [];
  probeVerdict = { refused: false };
  resume = null;
});

describe('TwinConnection', () => {
  it('offers twin.v1 and the bearer subprotocol, subscribes after hello', () => {
    const c = make();
    c.start();
    const ws = FakeSocket.all[0];
    expect(ws.url).toBe('ws://gw/ws');
    expect(ws.protocols).toEqual(['twin.v1', 'bearer.jwt']);
    expect(states.at(-1)[0]).toBe('connecting');
    ws.open();
    ws.receive({ type: 'hello', user: 'u', role: 'operator', epoch: 'e', seq: 0 });
    expect(states.at(-1)[0]).toBe('connected');
    expect(ws.sent).toEqual([{ type: 'subscribe' }]);
    expect(messages[0].type).toBe('hello');
    expect(c.send({ type: 'ping' })).toBe(true);
  });

  it('reconnects with backoff and resumes from the last seq', async () => {
    const c = make();
    c.start();
    let ws = FakeSocket.all[0];
    ws.open();
    ws.receive({ type: 'hello', user: 'u', role: 'viewer' });
    resume = { epoch: 'ep', seq: 17 };
    ws.drop(1001, 'going away');
    await flush();
    expect(states.at(-1)[0]).toBe('reconnecting');
    expect(timers.queue[0].at).toBe(500);
    timers.runNext();
    ws = FakeSocket.all[1];
    ws.drop(); // handshake fails: probe says not refused -> back off further
    await flush();
    expect(timers.queue[0].at - timers.now).toBe(1000);
    timers.runNext();
    ws = FakeSocket.all[2];
    ws.open();
    ws.receive({ type: 'hello', user: 'u', role: 'viewer' });
    expect(ws.sent[0]).toEqual({ type: 'subscribe', resume: { epoch: 'ep', seq: 17 } });
    expect(states.at(-1)[0]).toBe('connected');
  });

  it('stops with refused when the probe says the token is refused', async () => {
    probeVerdict = { refused: true, reason: 'token expired' };
    const c = make();
    c.start();
    FakeSocket.all[0].drop();
    await flush();
    expect(states.at(-1)).toEqual(['refused', 'token expired']);
    expect(timers.queue.length).toBe(0);
    expect(FakeSocket.all.length).toBe(1);
  });

  it('probes after a 4001 close (token expired) even though the socket was open', async () => {
    probeVerdict = { refused: true, reason: 'expired' };
    const c = make();
    c.start();
    const ws = FakeSocket.all[0];
    ws.open();
    ws.receive({ type: 'hello', user: 'u', role: 'viewer' });
    ws.drop(4001, 'token expired');
    await flush();
    expect(states.at(-1)[0]).toBe('refused');
  });

  it('does not send while disconnected', () => {
    const c = make();
    c.start();
    expect(c.send({ type: 'ack' })).toBe(false);
  });
});

describe('restProbe', () => {
  it('maps 401 to refused with the reason', async () => {
    const fetch401 = async () => new Response(JSON.stringify({ detail: 'bad signature' }), { status: 401 });
    expect(await restProbe('http://gw', 't', fetch401)()).toEqual({ refused: true, reason: 'bad signature' });
    const fetch200 = async () => new Response('{}', { status: 200 });
    expect(await restProbe('http://gw', 't', fetch200)()).toEqual({ refused: false });
  });
  it('reads a plain-text reason', async () => {
    expect(await reasonOf(new Response('origin not allowed', { status: 403 }))).toBe('origin not allowed');
  });
});
