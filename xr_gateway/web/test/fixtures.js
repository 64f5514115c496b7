export const LAYOUT = {
  name: 'bracket-plant',
  lines: [
    {
      id: 'line-1',
      stations: [
        { id: 'cnc-1', machine_type: 'cnc', input_buffer: null, ideal_cycle_time_s: 42, channels: [
          { name: 'spindle_speed', unit: 'rpm', role: null },
          { name: 'spindle_load', unit: '%', role: 'load' },
          { name: 'vibration_rms', unit: 'mm/s', role: 'vibration' },
          { name: 'temperature', unit: '°C', role: 'temperature' },
          { name: 'power', unit: 'kW', role: 'power' },
        ] },
        { id: 'press-1', machine_type: 'press', input_buffer: 10, ideal_cycle_time_s: 30, channels: [] },
        { id: 'weld-1', machine_type: 'welder', input_buffer: 8, ideal_cycle_time_s: 45, channels: [] },
      ],
    },
    {
      id: 'line-2',
      stations: [
        { id: 'x-1', machine_type: 'mystery', input_buffer: null, ideal_cycle_time_s: 10, channels: [] },
        { id: 'x-2', machine_type: 'qc', input_buffer: 4, ideal_cycle_time_s: 20, channels: [] },
      ],
    },
  ],
};

let n = 0;
export function state(machine, overrides = {}) {
  n += 1;
  return {
    event_id: `e-${n}`, event_time: 1_000 + n, source: 'test', correlation_id: `c-${n}`,
    line_id: 'line-1', machine_id: machine, machine_type: 'cnc', state: 'RUNNING', state_since: 1_000,
    signals: [{ name: 'vibration_rms', value: 2.5, unit: 'mm/s' }], active_alarms: [], oee: 0.5,
    parts_good: 3, parts_scrap: 0, ...overrides,
  };
}

export function alarm(machine, alarmId, status = 'ACTIVE_UNACK', overrides = {}) {
  n += 1;
  return {
    event_id: `a-${n}`, event_time: 1_000 + n, source: 'test', correlation_id: 'corr',
    alarm_id: alarmId, line_id: 'line-1', machine_id: machine, alarm_type: 'HighVibration', rule_id: 'r1',
    severity: 'MAJOR', status, start_time: 1_000, end_time: null, ack_time: null, acked_by: null,
    clear_time: null, cleared_by: null, value: 9.5, message: 'too much', details: {}, ...overrides,
  };
}

export function kpi(scopeId, size, oee, overrides = {}) {
  return {
    event_id: `k-${scopeId}-${size}-${oee}`, event_time: 5_000, source: 'test', correlation_id: 'k',
    line_id: 'line-1', scope: 'MACHINE', scope_id: scopeId, window_start: 0, window_end: 60_000,
    window_size_s: size, planned_time_s: size, run_time_s: size, total_count: 1, good_count: 1,
    ideal_cycle_time_s: 42, availability: 0.9, performance: 0.8, quality: 1, oee, throughput_per_hour: 1,
    mean_cycle_time_s: null, scrap_rate: 0, failures: 0, mtbf_s: null, mttr_s: null, late_events: 0,
    ...overrides,
  };
}
