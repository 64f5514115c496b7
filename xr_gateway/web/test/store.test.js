import { beforeEach, describe, expect, it } from 'vitest';
import { LAYOUT, alarm, kpi, state } from './fixtures.js';
import { computeLayout } from '../src/layout.js';
import { TwinStore, machineOee, sortedAlarms } from '../src/store.js';

let store;
beforeEach(() => {
  store = new TwinStore(computeLayout(LAYOUT).stations.values(), { historySize: 5 });
});
const m = (id) => store.machines.get(id);
const statuses = (id) => Object.fromEntries([...m(id).alarms.values()].map((a) => [a.alarm_id, a.status]));

describe('snapshot', () => {
  it('starts with every layout machine unknown', () => {
    expect([...store.machines.keys()]).toEqual(['cnc-1', 'press-1', 'weld-1', 'x-1', 'x-2']);
    expect(m('cnc-1').state).toBeNull();
    expect(store.resumePoint()).toBeNull();
  });

  it('applies machines, alarms, kpis and plans, and sets the resume point', () => {
    const changes = store.apply({
      type: 'snapshot', epoch: 'ep1', seq: 42,
      machines: [state('cnc-1', { state: 'DOWN' }), state('press-1', { state: 'IDLE' })],
      alarms: [alarm('cnc-1', 'a1')],
      kpis: [kpi('cnc-1', 60, 0.7)],
      plans: [{ plan_id: 'p', line_id: 'line-1', solver: 'qaoa', status: 'OPTIMAL', assignments: [] }],
    });
    expect(changes.machines.has('cnc-1')).toBe(true);
    expect(m('cnc-1').state).toBe('DOWN');
    expect(m('press-1').state).toBe('IDLE');
    expect(m('weld-1').state).toBeNull();
    expect(statuses('cnc-1')).toEqual({ a1: 'ACTIVE_UNACK' });
    expect(machineOee(m('cnc-1')).oee).toBe(0.7);
    expect(store.lines.get('line-1').plan.solver).toBe('qaoa');
    expect(store.resumePoint()).toEqual({ epoch: 'ep1', seq: 42 });
  });

  it('replaces everything shown (a snapshot is complete on its own)', () => {
    store.apply({ type: 'snapshot', epoch: 'ep1', seq: 5, machines: [state('cnc-1')], alarms: [alarm('cnc-1', 'a1')], kpis: [], plans: [] });
    store.apply({ type: 'snapshot', epoch: 'ep2', seq: 2, machines: [state('press-1')], alarms: [], kpis: [], plans: [] });
    expect(m('cnc-1').state).toBeNull();
    expect(m('cnc-1').alarms.size).toBe(0);
    expect(m('press-1').state).toBe('RUNNING');
    expect(store.resumePoint()).toEqual({ epoch: 'ep2', seq: 2 }); // a new gateway process starts lower
  });
});

describe('deltas', () => {
  beforeEach(() => {
    store.apply({ type: 'snapshot', epoch: 'ep1', seq: 10, machines: [], alarms: [], kpis: [], plans: [] });
  });

  it('tracks the last seq', () => {
    store.apply({ type: 'state', seq: 11, data: state('cnc-1') });
    store.apply({ type: 'kpi', seq: 15, data: kpi('cnc-1', 60, 0.5) });
    expect(store.seq).toBe(15);
    store.apply({ type: 'pong', seq: 99, id: 1 });
    expect(store.seq).toBe(15);
  });

  it('updates state, signals and sparkline history (bounded, NaN for dropped samples)', () => {
    for (let i = 0; i < 7; i++) {
      store.apply({ type: 'state', seq: 11 + i, data: state('cnc-1', { signals: [{ name: 'v', value: i === 3 ? null : i, unit: '' }] }) });
    }
    const h = m('cnc-1').history.get('v');
    expect(h.length).toBe(5);
    expect(h.slice(0, 1)).toEqual([2]);
    expect(Number.isNaN(h[1])).toBe(true);
    expect(h.slice(2)).toEqual([4, 5, 6]);
  });

  it('does not add a history point for a repeated (older) state', () => {
    const s = state('cnc-1');
    store.apply({ type: 'state', seq: 11, data: s });
    store.apply({ type: 'state', seq: 12, data: { ...s } });
    expect(m('cnc-1').history.get('vibration_rms').length).toBe(1);
  });

  it('learns machines that are not in the layout', () => {
    store.apply({ type: 'state', seq: 11, data: state('ghost-1', { line_id: 'line-9' }) });
    expect(m('ghost-1').state).toBe('RUNNING');
    expect(m('ghost-1').inLayout).toBe(false);
  });

  it('uses the shortest MACHINE window for OEE, latest window per size', () => {
    store.apply({ type: 'kpi', seq: 11, data: kpi('cnc-1', 3600, 0.9) });
    store.apply({ type: 'kpi', seq: 12, data: kpi('cnc-1', 60, 0.6) });
    store.apply({ type: 'kpi', seq: 13, data: kpi('cnc-1', 60, 0.1, { window_end: 1 }) }); // older window
    expect(machineOee(m('cnc-1'))).toMatchObject({ oee: 0.6, windowSizeS: 60, availability: 0.9 });
    store.apply({ type: 'kpi', seq: 14, data: kpi('line-1', 60, 0.4, { scope: 'LINE' }) });
    expect(store.lines.get('line-1').kpis.get(60).oee).toBe(0.4);
  });

  it("falls back to the twin state's OEE", () => {
    store.apply({ type: 'state', seq: 11, data: state('press-1', { oee: 0.33 }) });
    expect(machineOee(m('press-1')).oee).toBe(0.33);
    expect(machineOee(m('weld-1'))).toBeNull();
  });

  it('keeps the latest anomaly and plan', () => {
    store.apply({ type: 'anomaly', seq: 11, data: { machine_id: 'weld-1', line_id: 'line-1', event_time: 5, score: 3, threshold: 1, detector: 'hst' } });
    store.apply({ type: 'plan', seq: 12, data: { line_id: 'line-1', solver: 'greedy', status: 'FEASIBLE', assignments: [] } });
    expect(m('weld-1').anomaly.detector).toBe('hst');
    expect(store.lines.get('line-1').plan.solver).toBe('greedy');
  });
});

describe('alarm lifecycle', () => {
  beforeEach(() => {
    store.apply({ type: 'snapshot', epoch: 'ep1', seq: 1, machines: [], alarms: [], kpis: [], plans: [] });
  });

  it('raise -> ack -> clear (CLEARED_ACK is gone)', () => {
    store.apply({ type: 'alarm', seq: 2, data: alarm('cnc-1', 'a1') });
    expect(statuses('cnc-1')).toEqual({ a1: 'ACTIVE_UNACK' });
    store.apply({ type: 'alarm', seq: 3, data: alarm('cnc-1', 'a1', 'ACTIVE_ACK', { acked_by: 'op' }) });
    expect(statuses('cnc-1')).toEqual({ a1: 'ACTIVE_ACK' });
    expect(m('cnc-1').alarms.get('a1').acked_by).toBe('op');
    store.apply({ type: 'alarm', seq: 4, data: alarm('cnc-1', 'a1', 'CLEARED_ACK') });
    expect(m('cnc-1').alarms.size).toBe(0);
  });

  it('raise -> clear unacknowledged stays open until acked', () => {
    store.apply({ type: 'alarm', seq: 2, data: alarm('cnc-1', 'a1') });
    store.apply({ type: 'alarm', seq: 3, data: alarm('cnc-1', 'a1', 'CLEARED_UNACK') });
    // The twin state lists only ACTIVE_* alarms: it must not drop the one that still needs an ack.
    store.apply({ type: 'state', seq: 4, data: state('cnc-1', { active_alarms: [] }) });
    expect(statuses('cnc-1')).toEqual({ a1: 'CLEARED_UNACK' });
    store.apply({ type: 'alarm', seq: 5, data: alarm('cnc-1', 'a1', 'CLEARED_ACK') });
    expect(m('cnc-1').alarms.size).toBe(0);
  });

  it("takes alarms from the twin state's active_alarms and drops them when no longer listed", () => {
    const listed = { alarm_id: 'old', alarm_type: 'MachineDown', severity: 'CRITICAL', status: 'ACTIVE_UNACK' };
    store.apply({ type: 'state', seq: 2, data: state('press-1', { active_alarms: [listed] }) });
    expect(statuses('press-1')).toEqual({ old: 'ACTIVE_UNACK' });
    store.apply({ type: 'state', seq: 3, data: state('press-1', { active_alarms: [{ ...listed, status: 'ACTIVE_ACK' }] }) });
    expect(statuses('press-1')).toEqual({ old: 'ACTIVE_ACK' });
    store.apply({ type: 'state', seq: 4, data: state('press-1', { active_alarms: [] }) });
    expect(m('press-1').alarms.size).toBe(0);
  });

  it('never steps back: a late twin state does not undo an ack or revive a closed alarm', () => {
    const listed = { alarm_id: 'a1', alarm_type: 'HighVibration', severity: 'MAJOR', status: 'ACTIVE_UNACK' };
    store.apply({ type: 'alarm', seq: 2, data: alarm('cnc-1', 'a1', 'ACTIVE_ACK') });
    store.apply({ type: 'state', seq: 3, data: state('cnc-1', { active_alarms: [listed] }) });
    expect(statuses('cnc-1')).toEqual({ a1: 'ACTIVE_ACK' });
    store.apply({ type: 'alarm', seq: 4, data: alarm('cnc-1', 'a1', 'CLEARED_ACK') });
    store.apply({ type: 'state', seq: 5, data: state('cnc-1', { active_alarms: [listed] }) });
    expect(m('cnc-1').alarms.size).toBe(0);
  });

  it('a snapshot merges open alarms with the twin states', () => {
    store.apply({
      type: 'snapshot', epoch: 'ep1', seq: 9,
      machines: [state('cnc-1', { active_alarms: [{ alarm_id: 'a1', alarm_type: 'HighVibration', severity: 'MAJOR', status: 'ACTIVE_UNACK' }, { alarm_id: 'a2', alarm_type: 'Overheat', severity: 'MINOR', status: 'ACTIVE_UNACK' }] })],
      alarms: [alarm('cnc-1', 'a1', 'ACTIVE_ACK'), alarm('cnc-1', 'a3', 'CLEARED_UNACK')],
      kpis: [], plans: [],
    });
    expect(statuses('cnc-1')).toEqual({ a1: 'ACTIVE_ACK', a2: 'ACTIVE_UNACK', a3: 'CLEARED_UNACK' });
  });

  it('sorts unacknowledged first, then by severity', () => {
    store.apply({ type: 'alarm', seq: 2, data: alarm('cnc-1', 'acked', 'ACTIVE_ACK', { severity: 'CRITICAL' }) });
    store.apply({ type: 'alarm', seq: 3, data: alarm('cnc-1', 'minor', 'ACTIVE_UNACK', { severity: 'MINOR' }) });
    store.apply({ type: 'alarm', seq: 4, data: alarm('cnc-1', 'crit', 'ACTIVE_UNACK', { severity: 'CRITICAL' }) });
    expect(sortedAlarms(m('cnc-1')).map((a) => a.alarm_id)).toEqual(['crit', 'minor', 'acked']);
  });
});
