// The live twin as the page sees it: a reducer over gateway frames (snapshot, then deltas). Pure.
//
// Alarms come from two places: `alarm` frames (the full record at every lifecycle change) and the
// `active_alarms` summary inside each twin state (covers alarms raised before the gateway started,
// but lists only ACTIVE_* ones). An alarm is open until its status is CLEARED_ACK; a status never goes
// back in the lifecycle (ACTIVE_UNACK -> ACTIVE_ACK | CLEARED_UNACK -> CLEARED_ACK), so a late twin
// state cannot resurrect an acknowledged or closed alarm.

export const CLOSED_STATUS = 'CLEARED_ACK';
const RANK = { ACTIVE_UNACK: 0, ACTIVE_ACK: 1, CLEARED_UNACK: 1, CLEARED_ACK: 2 };
const rank = (status) => RANK[status] ?? 0;
const CLOSED_MEMORY = 2000;
export const HISTORY_SIZE = 120;

function newMachine(id, station = null, lineId = null) {
  return {
    id,
    lineId: station?.lineId ?? lineId,
    machineType: station?.machineType ?? '',
    inLayout: Boolean(station),
    state: null, // MachineState string once known
    stateSince: null,
    eventTime: null,
    signals: [], // [{name, value, unit}] as last reported
    history: new Map(), // signal name -> number[] (NaN for a dropped sample), last HISTORY_SIZE
    alarms: new Map(), // alarm_id -> {alarm_id, alarm_type, severity, status, fromStream, ...record}
    kpis: new Map(), // window_size_s -> KpiWindow record (scope MACHINE)
    stateOee: null, // `oee` of the twin state (latest closed window), used until a kpi frame arrives
    partsGood: 0,
    partsScrap: 0,
    anomaly: null,
  };
}

export class TwinStore {
  /** @param stations iterable of placed stations ({id, lineId, machineType}) from computeLayout */
  constructor(stations = [], { historySize = HISTORY_SIZE } = {}) {
    this.historySize = historySize;
    this.machines = new Map();
    this.lines = new Map();
    for (const s of stations) {
      this.machines.set(s.id, newMachine(s.id, s));
      this._line(s.lineId);
    }
    this.epoch = null;
    this.seq = 0;
    this.closed = new Set();
  }

  _line(id) {
    if (id === null || id === undefined) return null;
    let line = this.lines.get(id);
    if (!line) {
      line = { id, kpis: new Map(), plan: null };
      this.lines.set(id, line);
    }
    return line;
  }

  _machine(id, lineId) {
    let m = this.machines.get(id);
    if (!m) {
      m = newMachine(id, null, lineId);
      this.machines.set(id, m);
    }
    if (lineId && !m.lineId) m.lineId = lineId;
    this._line(m.lineId);
    return m;
  }

  /**
   * Apply one server message. Returns {machines: Set<id>, lines: Set<id>} of what changed (empty
   * sets for messages that change nothing shown).
   */
  apply(msg) {
    const changes = { machines: new Set(), lines: new Set() };
    if (!msg || typeof msg !== 'object') return changes;
    switch (msg.type) {
      case 'subscribed':
        if (msg.epoch) this.epoch = msg.epoch;
        break;
      case 'snapshot':
        this._snapshot(msg, changes);
        break;
      case 'state':
        this._seq(msg);
        if (msg.data) this._state(msg.data, changes);
        break;
      case 'alarm':
        this._seq(msg);
        if (msg.data) this._alarm(msg.data, changes);
        break;
      case 'kpi':
        this._seq(msg);
        if (msg.data) this._kpi(msg.data, changes);
        break;
      case 'anomaly':
        this._seq(msg);
        if (msg.data) this._anomaly(msg.data, changes);
        break;
      case 'plan':
        this._seq(msg);
        if (msg.data) this._plan(msg.data, changes);
        break;
      default:
        break;
    }
    return changes;
  }

  _seq(msg) {
    if (typeof msg.seq === 'number' && msg.seq > this.seq) this.seq = msg.seq;
  }

  _snapshot(msg, changes) {
    if (msg.epoch) this.epoch = msg.epoch;
    if (typeof msg.seq === 'number') this.seq = msg.seq;
    // A snapshot is complete on its own: forget live state (keep the sparkline history).
    for (const m of this.machines.values()) {
      m.state = null;
      m.stateSince = null;
      m.alarms.clear();
      m.kpis.clear();
      m.anomaly = null;
      m.stateOee = null;
      changes.machines.add(m.id);
    }
    for (const line of this.lines.values()) {
      line.kpis.clear();
      line.plan = null;
      changes.lines.add(line.id);
    }
    for (const record of msg.alarms || []) this._alarm(record, changes);
    for (const record of msg.machines || []) this._state(record, changes);
    for (const record of msg.kpis || []) this._kpi(record, changes);
    for (const record of msg.plans || []) this._plan(record, changes);
  }

  _state(r, changes) {
    if (!r.machine_id) return;
    const m = this._machine(r.machine_id, r.line_id);
    if (r.machine_type && !m.machineType) m.machineType = r.machine_type;
    const fresh = m.eventTime === null || (r.event_time ?? 0) > m.eventTime;
    m.state = r.state ?? null;
    m.stateSince = r.state_since ?? null;
    m.signals = Array.isArray(r.signals) ? r.signals.map((s) => ({ name: s.name, value: s.value, unit: s.unit || '' })) : [];
    m.stateOee = typeof r.oee === 'number' ? r.oee : null;
    m.partsGood = r.parts_good ?? 0;
    m.partsScrap = r.parts_scrap ?? 0;
    if (fresh) {
      m.eventTime = r.event_time ?? m.eventTime;
      for (const s of m.signals) {
        let h = m.history.get(s.name);
        if (!h) {
          h = [];
          m.history.set(s.name, h);
        }
        h.push(typeof s.value === 'number' ? s.value : NaN);
        if (h.length > this.historySize) h.splice(0, h.length - this.historySize);
      }
    }
    // The twin's list of ACTIVE_* alarms.
    const listed = new Set();
    for (const a of r.active_alarms || []) {
      listed.add(a.alarm_id);
      this._upsertAlarm(m, { ...a, machine_id: m.id, line_id: m.lineId }, false);
    }
    // An alarm known only from twin states and no longer listed was cleared.
    for (const [id, a] of m.alarms) if (!a.fromStream && !listed.has(id)) m.alarms.delete(id);
    changes.machines.add(m.id);
  }

  _alarm(r, changes) {
    if (!r.alarm_id || !r.machine_id) return;
    const m = this._machine(r.machine_id, r.line_id);
    this._upsertAlarm(m, r, true);
    changes.machines.add(m.id);
  }

  _upsertAlarm(m, a, fromStream) {
    const id = a.alarm_id;
    if (a.status === CLOSED_STATUS) {
      m.alarms.delete(id);
      this._remember(id);
      return;
    }
    if (this.closed.has(id)) return;
    const old = m.alarms.get(id);
    if (old) {
      if (rank(a.status) < rank(old.status)) return; // stale: never step back in the lifecycle
      if (!fromStream && old.fromStream && rank(a.status) === rank(old.status)) return;
      m.alarms.set(id, { ...old, ...a, fromStream: fromStream || old.fromStream });
    } else {
      m.alarms.set(id, { ...a, fromStream });
    }
  }

  _remember(id) {
    this.closed.add(id);
    if (this.closed.size > CLOSED_MEMORY) {
      const oldest = this.closed.values().next().value;
      this.closed.delete(oldest);
    }
  }

  _kpi(r, changes) {
    const size = r.window_size_s;
    if (r.scope === 'MACHINE') {
      if (!r.scope_id) return;
      const m = this._machine(r.scope_id, r.line_id);
      const old = m.kpis.get(size);
      if (!old || (r.window_end ?? 0) >= (old.window_end ?? 0)) m.kpis.set(size, r);
      changes.machines.add(m.id);
    } else {
      const line = this._line(r.scope_id || r.line_id);
      if (!line) return;
      const old = line.kpis.get(size);
      if (!old || (r.window_end ?? 0) >= (old.window_end ?? 0)) line.kpis.set(size, r);
      changes.lines.add(line.id);
    }
  }

  _anomaly(r, changes) {
    if (!r.machine_id) return;
    const m = this._machine(r.machine_id, r.line_id);
    if (!m.anomaly || (r.event_time ?? 0) >= (m.anomaly.event_time ?? 0)) m.anomaly = r;
    changes.machines.add(m.id);
  }

  _plan(r, changes) {
    const line = this._line(r.line_id);
    if (!line) return;
    line.plan = r;
    changes.lines.add(line.id);
  }

  /** The resume point for a reconnect, or null before the first snapshot. */
  resumePoint() {
    return this.epoch ? { epoch: this.epoch, seq: this.seq } : null;
  }
}

/** The KPI window with the shortest window size, or null. */
export function shortestWindow(kpis) {
  let best = null;
  for (const [size, record] of kpis) if (best === null || size < best[0]) best = [size, record];
  return best ? best[1] : null;
}

/** Latest OEE shown for a machine: its shortest MACHINE-scope window, else the twin state's figure. */
export function machineOee(m) {
  const k = shortestWindow(m.kpis);
  if (k) return { oee: k.oee, availability: k.availability, performance: k.performance, quality: k.quality, windowSizeS: k.window_size_s, windowEnd: k.window_end };
  if (typeof m.stateOee === 'number') return { oee: m.stateOee, availability: null, performance: null, quality: null, windowSizeS: null, windowEnd: null };
  return null;
}

/** Open alarms, unacknowledged first, then by severity, then newest first. */
export function sortedAlarms(m) {
  const sev = ['CRITICAL', 'MAJOR', 'MINOR', 'WARNING', 'INDETERMINATE'];
  const unack = (s) => (s === 'ACTIVE_UNACK' || s === 'CLEARED_UNACK' ? 0 : 1);
  return [...m.alarms.values()].sort(
    (a, b) =>
      unack(a.status) - unack(b.status) ||
      sev.indexOf(a.severity) - sev.indexOf(b.severity) ||
      (b.start_time ?? 0) - (a.start_time ?? 0),
  );
}
