import { describe, expect, it } from 'vitest';
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, backoffDelay } from '../src/backoff.js';

describe('backoffDelay', () => {
  it('starts at 0.5 s and doubles', () => {
    const mid = () => 0.5; // jitter factor exactly 1
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, mid))).toEqual([500, 1000, 2000, 4000, 8000]);
  });

  it('is capped at 10 s', () => {
    for (const a of [5, 6, 10, 50, 1e9]) {
      for (const r of [0, 0.5, 0.999]) expect(backoffDelay(a, () => r)).toBeLessThanOrEqual(BACKOFF_MAX_MS);
    }
    expect(backoffDelay(20, () => 0.999)).toBe(BACKOFF_MAX_MS);
  });

  it('never goes below 0.5 s', () => {
    for (const r of [0, 0.2, 0.9]) expect(backoffDelay(0, () => r)).toBeGreaterThanOrEqual(BACKOFF_MIN_MS);
    expect(backoffDelay(-3, () => 0)).toBe(BACKOFF_MIN_MS);
  });

  it('jitters within ±20 %', () => {
    expect(backoffDelay(3, () => 0)).toBe(3200);
    expect(backoffDelay(3, () => 0.999999)).toBe(4800);
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(2)));
    expect(seen.size).toBeGreaterThan(1);
  });
});
