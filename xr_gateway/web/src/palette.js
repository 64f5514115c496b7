// Machine state colours (saturated, so a screenshot pixel reads as the state) and alarm helpers.

export const STATE_COLORS = Object.freeze({
  RUNNING: '#22c55e', // green: producing
  IDLE: '#f59e0b', // amber: available, not producing
  STARVED: '#facc15', // yellow: waiting for input
  BLOCKED: '#fb923c', // orange: output buffer full
  DOWN: '#ef4444', // red: unplanned stop
  SETUP: '#3b82f6', // blue: planned stop (changeover, maintenance, break)
});
export const UNKNOWN_COLOR = '#9ca3af'; // grey: no data yet, or a state this client does not know

export function stateColor(state) {
  return (state && STATE_COLORS[state]) || UNKNOWN_COLOR;
}

export const SEVERITY_ORDER = ['CRITICAL', 'MAJOR', 'MINOR', 'WARNING', 'INDETERMINATE'];

/** Alarms that still need an operator's acknowledgement (they flash, ISA-18.2 style). */
export function isUnacked(status) {
  return status === 'ACTIVE_UNACK' || status === 'CLEARED_UNACK';
}

/** Which commands make sense for an alarm in `status` (the alarm engine ignores the others). */
export function alarmActions(status) {
  return {
    ack: status === 'ACTIVE_UNACK' || status === 'CLEARED_UNACK',
    clear: status === 'ACTIVE_UNACK' || status === 'ACTIVE_ACK',
  };
}
