// Factory Twin XR client: token -> layout -> scene -> live websocket feed -> scene, labels, panel.

import './style.css';
import { gatewayUrls, storeToken, takeToken } from './config.js';
import { computeLayout } from './layout.js';
import { TwinStore } from './store.js';
import { TwinConnection, reasonOf, restProbe } from './connection.js';
import { backoffDelay } from './backoff.js';
import { FactoryScene } from './scene.js';
import { createLineLabel, createMachineLabel, updateLineLabel, updateMachineLabel } from './labels.js';
import { MachinePanel } from './panel.js';
import { setupXRButton } from './xr.js';

const $ = (sel) => document.querySelector(sel);

// -- the test hook (small and stable; see README) -------------------------------------------------
const hook = {
  ready: false,
  connection: 'connecting',
  machines: () => ({}),
  screenPosition: () => null,
  seq: () => 0,
};
window.twin = hook;

// -- connection indicator ---------------------------------------------------------------------------
const STATE_TEXT = { connecting: 'Connecting', connected: 'Connected', reconnecting: 'Reconnecting', refused: 'Refused' };

function showConnection(state, detail = '') {
  hook.connection = state;
  const box = $('#connection');
  box.dataset.state = state;
  box.querySelector('.text').textContent = !detail ? STATE_TEXT[state] : state === 'connected' ? detail : `${STATE_TEXT[state]}: ${detail}`;
  box.title = detail || STATE_TEXT[state];
}

function toast(text, kind = 'info') {
  const t = $('#toast');
  t.textContent = text;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    t.hidden = true;
  }, 6000);
}

// -- login ------------------------------------------------------------------------------------------
function cleanToken(text) {
  return String(text || '')
    .trim()
    .replace(/^#?token=/i, '')
    .replace(/^Bearer\s+/i, '')
    .trim();
}

async function showLogin(http, reason) {
  const panel = $('#login');
  panel.hidden = false;
  $('#login-reason').textContent = reason || 'Paste a gateway token (JWT) to connect.';
  const use = (token) => {
    if (!token) return;
    storeToken(sessionStorage, token);
    location.reload();
  };
  $('#login-form').onsubmit = (e) => {
    e.preventDefault();
    use(cleanToken($('#login-token').value));
  };
  // Dev mode (`twin gateway --dev`, loopback only) hands out tokens; elsewhere this is 404/403.
  const dev = $('#login-dev');
  dev.hidden = true;
  try {
    const res = await fetch(`${http}/api/dev/token?role=operator`, { method: 'POST', cache: 'no-store' });
    if (res.ok) {
      const body = await res.json();
      if (body && body.token) {
        dev.hidden = false;
        dev.onclick = () => use(body.token);
      }
    }
  } catch {
    /* no dev mode here */
  }
}

// -- layout -----------------------------------------------------------------------------------------
async function loadLayout(http, token) {
  for (let attempt = 0; ; attempt++) {
    let res = null;
    try {
      res = await fetch(`${http}/api/layout`, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
    } catch {
      res = null;
    }
    if (res && res.status === 401) return { refused: await reasonOf(res) };
    if (res && res.ok) return { layout: await res.json() };
    const delay = backoffDelay(attempt);
    const why = res ? `layout: HTTP ${res.status}` : 'gateway unreachable';
    showConnection(attempt === 0 ? 'connecting' : 'reconnecting', `${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

// -- the app ----------------------------------------------------------------------------------------
async function main() {
  const { http, ws } = gatewayUrls(location);
  const token = takeToken(location, sessionStorage, history);
  showConnection('connecting');
  if (!token) {
    showConnection('refused', 'not signed in');
    await showLogin(http);
    return;
  }

  const got = await loadLayout(http, token);
  if (got.refused !== undefined) {
    storeToken(sessionStorage, null);
    showConnection('refused', got.refused);
    await showLogin(http, `The gateway refused the token: ${got.refused}`);
    return;
  }
  const layout = got.layout;
  $('#factory-name').textContent = layout.name || '';
  document.title = `Factory Twin — ${layout.name || 'floor'}`;
  const placed = computeLayout(layout);
  const store = new TwinStore(placed.stations.values());

  const labels = new Map();
  const lineLabels = new Map();
  let selected = null;

  const panel = new MachinePanel($('#panel'), {
    onAck: (alarm) => command('ack', alarm),
    onClear: (alarm) => command('clear', alarm),
    onClose: () => select(null),
  });

  const scene = new FactoryScene($('#stage'), placed, {
    makeLabel: (id) => {
      const label = createMachineLabel(id, (mid) => select(mid));
      labels.set(id, label);
      return label;
    },
    makeLineLabel: (line) => {
      const label = createLineLabel(line);
      lineLabels.set(line.id, label);
      return label;
    },
    onSelect: (id) => select(id),
  });

  function select(id) {
    if (selected && labels.has(selected)) labels.get(selected).classList.remove('selected');
    selected = id && store.machines.has(id) ? id : null;
    scene.select(selected);
    if (selected) {
      labels.get(selected)?.classList.add('selected');
      const m = store.machines.get(selected);
      panel.show(m, placed.stations.get(selected), store.lines.get(m.lineId));
    } else {
      panel.hide();
    }
  }
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && selected) select(null);
  });

  // Apply changes in batches (a snapshot or a burst touches many machines).
  const dirtyMachines = new Set();
  const dirtyLines = new Set();
  let flushScheduled = false;
  function flush() {
    flushScheduled = false;
    for (const id of dirtyMachines) {
      const m = store.machines.get(id);
      if (!m) continue;
      const alarms = [...m.alarms.values()];
      scene.setMachine(id, m.state, alarms);
      const label = labels.get(id);
      if (label) updateMachineLabel(label, m, placed.stations.get(id));
      if (id === selected) panel.update(m, placed.stations.get(id), store.lines.get(m.lineId));
    }
    for (const id of dirtyLines) {
      const line = store.lines.get(id);
      updateLineLabel(lineLabels.get(id), line);
      if (selected && store.machines.get(selected)?.lineId === id) {
        const m = store.machines.get(selected);
        panel.update(m, placed.stations.get(selected), line);
      }
    }
    if (dirtyMachines.size || dirtyLines.size) scene.requestRender({ labels: true });
    dirtyMachines.clear();
    dirtyLines.clear();
  }
  function scheduleFlush() {
    if (flushScheduled) return;
    flushScheduled = true;
    // rAF batches with the next frame; the timeout covers hidden tabs, where rAF sleeps.
    requestAnimationFrame(() => flushScheduled && flush());
    setTimeout(() => flushScheduled && flush(), 100);
  }

  // Commands: ack/clear with a request id, answered by command_accepted or error.
  const pending = new Map(); // request id -> {command, alarm}
  let role = null;
  function command(kind, alarm) {
    const id = conn.requestId(kind);
    const sent = conn.send({ type: kind, alarm_id: alarm.alarm_id, id });
    if (!sent) {
      panel.showStatus('error', 'Not connected to the gateway; try again once the connection is back.');
      return;
    }
    pending.set(id, { command: kind, alarm });
    panel.setPending(alarm.alarm_id, kind);
    panel.showStatus('pending', `${kind === 'ack' ? 'Acknowledging' : 'Clearing'} ${alarm.alarm_type}…`);
    const m = store.machines.get(alarm.machine_id);
    if (m && selected === m.id) panel.update(m, placed.stations.get(m.id), store.lines.get(m.lineId));
  }
  function settle(id) {
    const p = pending.get(id);
    if (!p) return null;
    pending.delete(id);
    panel.setPending(p.alarm.alarm_id, null);
    const m = store.machines.get(p.alarm.machine_id);
    if (m && selected === m.id) panel.update(m, placed.stations.get(m.id), store.lines.get(m.lineId));
    return p;
  }
  const ERROR_TEXT = {
    forbidden: () =>
      `Your token's role (${role || 'viewer'}) can watch the line but not acknowledge or clear alarms. Sign in with an operator token to do that.`,
    unknown_alarm: () => 'The gateway no longer knows this alarm; it may have been closed already.',
    rate_limited: () => 'Too many requests in a short time; wait a moment and try again.',
    unavailable: () => 'Commands are unavailable on this gateway right now.',
    command_failed: (m) => `The command could not be delivered: ${m}`,
  };

  function onMessage(msg) {
    switch (msg.type) {
      case 'hello':
        role = msg.role;
        panel.setRole(role);
        if (selected) panel.update(store.machines.get(selected), placed.stations.get(selected), store.lines.get(store.machines.get(selected).lineId));
        $('#user').textContent = `${msg.user} · ${msg.role}`;
        $('#user').dataset.role = msg.role;
        // Requests of a lost connection get no answer: forget them.
        for (const id of [...pending.keys()]) settle(id);
        return;
      case 'command_accepted': {
        const p = settle(msg.id);
        const what = p ? p.alarm.alarm_type : msg.alarm_id;
        panel.showStatus('accepted', `${msg.command === 'clear' || p?.command === 'clear' ? 'Clear' : 'Ack'} of ${what} accepted; the alarm updates when the line confirms it.`);
        return;
      }
      case 'error': {
        const p = settle(msg.id);
        const text = (ERROR_TEXT[msg.code] || ((m) => m || msg.code))(msg.message || '');
        if (p) panel.showStatus('error', text);
        else toast(text, 'error');
        return;
      }
      case 'pong':
        return;
      default: {
        const changes = store.apply(msg);
        for (const id of changes.machines) dirtyMachines.add(id);
        for (const id of changes.lines) dirtyLines.add(id);
        if (changes.machines.size || changes.lines.size) scheduleFlush();
      }
    }
  }

  const conn = new TwinConnection({
    url: ws,
    token,
    onMessage,
    onState: (state, detail) => {
      showConnection(state, detail);
      if (state === 'refused') {
        storeToken(sessionStorage, null);
        showLogin(http, `The gateway refused the token: ${detail}`);
      }
    },
    resumePoint: () => store.resumePoint(),
    probe: restProbe(http, token),
  });

  // Test hook (see README): live getters over the scene and the store.
  hook.machines = () => scene.view();
  hook.screenPosition = (id) => scene.screenPosition(id);
  hook.seq = () => store.seq;
  hook.select = (id) => select(id);
  hook.ready = true;
  document.body.dataset.ready = 'true';

  setupXRButton($('#enter-vr'), 'vr', scene.renderer);
  setupXRButton($('#enter-ar'), 'ar', scene.renderer, { overlay: document.body });

  conn.start();
}

main().catch((err) => {
  console.error(err);
  toast(`The page failed to start: ${err && err.message ? err.message : err}`, 'error');
});
