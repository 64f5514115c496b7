// Reconnect delays: exponential from 0.5 s, capped at 10 s, with jitter so that a gateway restart is
// not answered by every browser in the same millisecond.

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 10_000;

/**
 * Delay before reconnect attempt `attempt` (0 = first retry): 500 ms * 2^attempt, times a jitter
 * factor in [0.8, 1.2), clamped to [500 ms, 10 s]. `random` is injectable for tests.
 */
export function backoffDelay(attempt, random = Math.random) {
  const n = Math.max(0, Math.min(30, Math.floor(attempt)));
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** n);
  const jittered = base * (0.8 + 0.4 * random());
  return Math.round(Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, jittered)));
}
