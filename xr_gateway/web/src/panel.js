// The side panel of the selected machine: state, OEE, signals with sparklines, open alarms with
// Ack/Clear. Updated in place (keyed by signal name and alarm id) so buttons stay put while frames
// arrive.

import { machineOee, sortedAlarms } from './store.js';
import { alarmActions, stateColor } from './palette.js';
import { drawSparkline } from './sparkline.js';
import { formatDuration, formatPercent, formatTime, formatValue, humanize } from './format.js';

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class MachinePanel {
  /**
   * @param {HTMLElement} root the #panel element
   * @param {{onAck: (alarm) => void, onClear: (alarm) => void, onClose: () => void}} handlers
   */
  constructor(root, { onAck, onClear, onClose }) {
    this.root = root;
    this.onAck = onAck;
    this.onClear = onClear;
    this.machineId = null;
    this.pending = new Map(); // alarm_id -> command in flight
    this.canCommand = true; // until the gateway's hello says the role: viewers get no Ack/Clear
    root.innerHTML = `
      <header class="panel-head">
        <div>
          <h2 class="panel-title"></h2>
          <div class="panel-sub"></div>
        </div>
        <button type="button" id="panel-close" class="icon" aria-label="Close panel">×</button>
      </header>
      <section class="panel-state">
        <span class="state-chip"></span>
        <span class="state-since"></span>
      </section>
      <section class="panel-oee">
        <h3>OEE <span class="oee-window"></span></h3>
        <dl class="oee-grid">
          <div><dt>OEE</dt><dd data-kpi="oee">—</dd></div>
          <div><dt>Availability</dt><dd data-kpi="availability">—</dd></div>
          <div><dt>Performance</dt><dd data-kpi="performance">—</dd></div>
          <div><dt>Quality</dt><dd data-kpi="quality">—</dd></div>
        </dl>
        <div class="panel-parts"></div>
      </section>
      <section class="panel-alarms">
        <h3>Alarms <span class="alarm-count"></span></h3>
        <ul class="alarms"></ul>
        <p class="no-alarms">No open alarms.</p>
        <div id="command-status" role="status" aria-live="polite" hidden></div>
      </section>
      <section class="panel-signals">
        <h3>Signals</h3>
        <ul class="signals"></ul>
      </section>
      <section class="panel-anomaly" hidden>
        <h3>Latest anomaly</h3>
        <p class="anomaly-text"></p>
      </section>
      <section class="panel-plan" hidden>
        <h3>Plan</h3>
        <p class="plan-text"></p>
      </section>`;
    root.querySelector('#panel-close').addEventListener('click', () => onClose());
    this.alarmList = root.querySelector('ul.alarms');
    this.signalList = root.querySelector('ul.signals');
    this.status = root.querySelector('#command-status');
    this.alarmList.addEventListener('click', (e) => {
      const button = e.target.closest('button');
      if (!button || button.disabled) return;
      const li = button.closest('li.alarm');
      const alarm = li && this.alarms ? this.alarms.get(li.dataset.alarmId) : null;
      if (!alarm) return;
      if (button.classList.contains('ack')) this.onAck(alarm);
      else if (button.classList.contains('clear')) this.onClear(alarm);
    });
  }

  get open() {
    return this.machineId !== null;
  }

  show(machine, station, line) {
    if (this.machineId !== machine.id) {
      this.alarmList.replaceChildren();
      this.signalList.replaceChildren();
      this.clearStatus();
    }
    this.machineId = machine.id;
    this.root.dataset.machine = machine.id;
    this.root.hidden = false;
    this.update(machine, station, line);
  }

  hide() {
    this.machineId = null;
    delete this.root.dataset.machine;
    this.root.hidden = true;
  }

  /** The connection's role: only operators may acknowledge or clear alarms. */
  setRole(role) {
    this.canCommand = role === 'operator';
  }

  update(machine, station, line) {
    if (machine.id !== this.machineId) return;
    const q = (s) => this.root.querySelector(s);
    q('.panel-title').textContent = machine.id;
    q('.panel-sub').textContent = [station?.machineType || machine.machineType, machine.lineId].filter(Boolean).join(' · ');
    const chip = q('.state-chip');
    chip.textContent = machine.state || 'NO DATA';
    chip.dataset.state = machine.state || 'UNKNOWN';
    chip.style.setProperty('--state-color', stateColor(machine.state));
    q('.state-since').textContent = machine.stateSince ? `since ${formatTime(machine.stateSince)}` : '';

    const oee = machineOee(machine);
    for (const key of ['oee', 'availability', 'performance', 'quality']) {
      q(`dd[data-kpi="${key}"]`).textContent = oee ? formatPercent(oee[key]) : '—';
    }
    q('.oee-window').textContent = oee?.windowSizeS ? `(${formatDuration(oee.windowSizeS)} window, ended ${formatTime(oee.windowEnd)})` : oee ? '(latest window)' : '';
    const parts = [`good ${machine.partsGood}`, `scrap ${machine.partsScrap}`];
    if (station?.idealCycleTimeS) parts.push(`ideal cycle ${formatValue(station.idealCycleTimeS, 's')}`);
    if (station?.inputBuffer !== null && station?.inputBuffer !== undefined) parts.push(`input buffer ${station.inputBuffer}`);
    q('.panel-parts').textContent = parts.join(' · ');

    this._alarms(machine);
    this._signals(machine, station);

    const anomaly = machine.anomaly;
    q('.panel-anomaly').hidden = !anomaly;
    if (anomaly) {
      const top = (anomaly.contributing || []).slice(0, 3).map((c) => humanize(c.name)).join(', ');
      q('.anomaly-text').textContent =
        `${anomaly.detector}: score ${formatValue(anomaly.score)} > ${formatValue(anomaly.threshold)} at ${formatTime(anomaly.event_time)}` + (top ? ` (${top})` : '');
    }
    const plan = line?.plan;
    const mine = plan ? (plan.assignments || []).filter((a) => a.machine_id === machine.id) : [];
    q('.panel-plan').hidden = !plan;
    if (plan) {
      const next = mine
        .slice(0, 3)
        .map((a) => `${a.job_id} ${formatTime(a.start_time)}–${formatTime(a.end_time)}`)
        .join(', ');
      q('.plan-text').textContent = `${plan.solver} (${plan.status}), ${mine.length} job${mine.length === 1 ? '' : 's'} here` + (next ? `: ${next}` : '');
    }
  }

  _alarms(machine) {
    const list = sortedAlarms(machine);
    this.alarms = new Map(list.map((a) => [a.alarm_id, a]));
    this.root.querySelector('.alarm-count').textContent = list.length ? `(${list.length})` : '';
    this.root.querySelector('.no-alarms').hidden = list.length > 0;
    const existing = new Map([...this.alarmList.children].map((li) => [li.dataset.alarmId, li]));
    list.forEach((a, index) => {
      let li = existing.get(a.alarm_id);
      if (!li) {
        li = el('li', 'alarm');
        li.dataset.alarmId = a.alarm_id;
        const text = el('div', 'alarm-text');
        const detail = el('div', 'alarm-detail');
        const actions = el('div', 'alarm-actions');
        const ack = el('button', 'ack', 'Ack');
        ack.type = 'button';
        const clear = el('button', 'clear', 'Clear');
        clear.type = 'button';
        actions.append(ack, clear);
        li.append(text, detail, actions);
      }
      existing.delete(a.alarm_id);
      li.dataset.status = a.status;
      li.dataset.severity = a.severity || 'INDETERMINATE';
      li.querySelector('.alarm-text').textContent = `${a.alarm_type} · ${a.severity} · ${a.status}`;
      const detail = [];
      if (a.message) detail.push(a.message);
      if (a.start_time) detail.push(`since ${formatTime(a.start_time)}`);
      if (a.acked_by) detail.push(`acked by ${a.acked_by}`);
      if (a.cleared_by) detail.push(`cleared by ${a.cleared_by}`);
      li.querySelector('.alarm-detail').textContent = detail.join(' · ');
      const can = alarmActions(a.status);
      const pending = this.pending.get(a.alarm_id);
      const ack = li.querySelector('button.ack');
      const clear = li.querySelector('button.clear');
      ack.hidden = !can.ack || !this.canCommand;
      clear.hidden = !can.clear || !this.canCommand;
      ack.disabled = pending === 'ack';
      clear.disabled = pending === 'clear';
      ack.textContent = pending === 'ack' ? 'Ack…' : 'Ack';
      clear.textContent = pending === 'clear' ? 'Clear…' : 'Clear';
      if (this.alarmList.children[index] !== li) this.alarmList.insertBefore(li, this.alarmList.children[index] || null);
    });
    for (const li of existing.values()) li.remove();
  }

  _signals(machine, station) {
    const units = new Map((station?.channels || []).map((c) => [c.name, c.unit]));
    const names = machine.signals.length ? machine.signals.map((s) => s.name) : (station?.channels || []).map((c) => c.name);
    const byName = new Map(machine.signals.map((s) => [s.name, s]));
    const existing = new Map([...this.signalList.children].map((li) => [li.dataset.signal, li]));
    names.forEach((name, index) => {
      let li = existing.get(name);
      if (!li) {
        li = el('li', 'signal');
        li.dataset.signal = name;
        const canvas = el('canvas', 'sparkline');
        canvas.width = 160;
        canvas.height = 32;
        canvas.dataset.signal = name;
        li.append(el('span', 'signal-name', humanize(name)), el('span', 'signal-value', '—'), canvas);
      }
      existing.delete(name);
      const s = byName.get(name);
      li.querySelector('.signal-value').textContent = s ? formatValue(s.value, s.unit || units.get(name) || '') : '—';
      if (this.signalList.children[index] !== li) this.signalList.insertBefore(li, this.signalList.children[index] || null);
      drawSparkline(li.querySelector('canvas'), machine.history.get(name) || []);
    });
    for (const li of existing.values()) li.remove();
  }

  setPending(alarmId, command) {
    if (command) this.pending.set(alarmId, command);
    else this.pending.delete(alarmId);
  }

  /** Show the outcome of a command: kind 'pending' | 'accepted' | 'error'. */
  showStatus(kind, text) {
    this.status.hidden = false;
    this.status.dataset.kind = kind;
    this.status.textContent = text;
  }

  clearStatus() {
    this.status.hidden = true;
    this.status.textContent = '';
    delete this.status.dataset.kind;
  }
}
