// Floating machine labels (real DOM elements placed by CSS2DRenderer) and line labels.

import { keySignalNames } from './layout.js';
import { machineOee } from './store.js';
import { formatPercent, formatValue, humanize } from './format.js';
import { stateColor } from './palette.js';

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A label element for machine `id`; `onClick(id)` selects it. */
export function createMachineLabel(id, onClick) {
  const root = el('div', 'machine-label');
  root.dataset.machine = id;
  root.dataset.state = 'UNKNOWN';
  root.dataset.alarms = '0';
  root.setAttribute('role', 'button');
  root.tabIndex = 0;
  root.title = `Select ${id}`;
  const head = el('div', 'ml-head');
  const name = el('span', 'ml-id', id);
  const alarms = el('span', 'ml-alarms');
  alarms.hidden = true;
  head.append(name, alarms);
  const state = el('div', 'ml-state', 'NO DATA');
  const signals = el('div', 'ml-signals');
  const oee = el('div', 'ml-oee', 'OEE —');
  root.append(head, state, signals, oee);
  const select = (e) => {
    e.stopPropagation();
    onClick(id);
  };
  root.addEventListener('click', select);
  root.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') select(e);
  });
  return root;
}

/** Refresh a machine label from the store's machine and its layout station. */
export function updateMachineLabel(root, machine, station) {
  const stateName = machine.state || 'UNKNOWN';
  const count = machine.alarms.size;
  root.dataset.state = stateName;
  root.dataset.alarms = String(count);
  root.style.setProperty('--state-color', stateColor(machine.state));
  const stateEl = root.querySelector('.ml-state');
  stateEl.textContent = machine.state || 'NO DATA';
  const alarmsEl = root.querySelector('.ml-alarms');
  alarmsEl.hidden = count === 0;
  alarmsEl.textContent = count ? `⚠ ${count}` : '';
  alarmsEl.title = count ? `${count} open alarm${count === 1 ? '' : 's'}` : '';

  const names = keySignalNames(station?.channels, machine.signals, 3);
  const byName = new Map(machine.signals.map((s) => [s.name, s]));
  const unitOf = new Map((station?.channels || []).map((c) => [c.name, c.unit]));
  const box = root.querySelector('.ml-signals');
  // Keyed rows: update text in place, so the label does not flicker.
  if (box.dataset.names !== names.join(',')) {
    box.replaceChildren(
      ...names.map((n) => {
        const row = el('div', 'ml-signal');
        row.dataset.signal = n;
        row.append(el('span', 'ml-signal-name', humanize(n)), el('span', 'ml-signal-value', '—'));
        return row;
      }),
    );
    box.dataset.names = names.join(',');
  }
  for (const row of box.children) {
    const s = byName.get(row.dataset.signal);
    row.lastChild.textContent = s ? formatValue(s.value, s.unit || unitOf.get(s.name) || '') : '—';
  }
  const oee = machineOee(machine);
  root.querySelector('.ml-oee').textContent = oee ? `OEE ${formatPercent(oee.oee)}${oee.windowSizeS ? ` · ${oee.windowSizeS} s` : ''}` : 'OEE —';
}

export function createLineLabel(line) {
  const root = el('div', 'line-label');
  root.dataset.line = line.id;
  root.append(el('div', 'll-name', line.id), el('div', 'll-kpi', ''));
  return root;
}

/** Line OEE (shortest LINE-scope window) and the latest plan's solver/status. */
export function updateLineLabel(root, line) {
  if (!root || !line) return;
  let best = null;
  for (const [size, k] of line.kpis) if (!best || size < best.window_size_s) best = k;
  const parts = [];
  if (best) parts.push(`OEE ${formatPercent(best.oee)} · ${best.window_size_s} s`);
  if (line.plan) parts.push(`plan: ${line.plan.solver} ${line.plan.status}`);
  root.querySelector('.ll-kpi').textContent = parts.join(' — ');
}
