import { describe, expect, it } from 'vitest';
import { LAYOUT } from './fixtures.js';
import {
  LINE_SPACING, STATION_SPACING, bufferLength, computeLayout, keySignalNames, machineSize,
} from '../src/layout.js';

describe('computeLayout', () => {
  const placed = computeLayout(LAYOUT);

  it('puts each line on its own row and stations along x in flow order', () => {
    expect(placed.lines.map((l) => l.id)).toEqual(['line-1', 'line-2']);
    const [l1, l2] = placed.lines;
    expect(l2.z - l1.z).toBe(LINE_SPACING);
    const xs = l1.stations.map((s) => s.x);
    expect(xs[1] - xs[0]).toBe(STATION_SPACING);
    expect(xs[2] - xs[1]).toBe(STATION_SPACING);
    for (const s of l1.stations) expect(s.z).toBe(l1.z);
  });

  it('centres the floor on the origin', () => {
    const [l1, l2] = placed.lines;
    expect(l1.z + l2.z).toBeCloseTo(0);
    expect(l1.stations[0].x + l1.stations[2].x).toBeCloseTo(0);
  });

  it('indexes stations by id with their layout data', () => {
    const s = placed.stations.get('press-1');
    expect(s).toMatchObject({ lineId: 'line-1', index: 1, machineType: 'press', inputBuffer: 10, idealCycleTimeS: 30 });
    expect(s.center.y).toBeCloseTo(machineSize('press')[1] / 2);
    expect(placed.stations.size).toBe(5);
  });

  it('draws a conveyor between consecutive stations, not overlapping the machines', () => {
    const l1 = placed.lines[0];
    expect(l1.conveyors.map((c) => [c.from, c.to])).toEqual([['cnc-1', 'press-1'], ['press-1', 'weld-1']]);
    const [c] = l1.conveyors;
    const a = placed.stations.get('cnc-1');
    const b = placed.stations.get('press-1');
    expect(c.x0).toBeCloseTo(a.x + a.size[0] / 2);
    expect(c.x1).toBeCloseTo(b.x - b.size[0] / 2);
  });

  it('places a buffer before each station with input_buffer, sized by capacity', () => {
    expect(placed.stations.get('cnc-1').buffer).toBeNull();
    const press = placed.stations.get('press-1');
    const weld = placed.stations.get('weld-1');
    expect(press.buffer.capacity).toBe(10);
    expect(press.buffer.x).toBeCloseTo(press.x - STATION_SPACING / 2);
    expect(press.buffer.size[0]).toBeGreaterThan(weld.buffer.size[0]); // 10 > 8 slots
    expect(bufferLength(1000)).toBeLessThanOrEqual(3.2);
    expect(bufferLength(0)).toBeGreaterThan(0);
  });

  it('uses a default size for unknown machine types', () => {
    expect(placed.stations.get('x-1').size).toEqual(machineSize('default'));
  });

  it('bounds contain every machine', () => {
    const { bounds } = placed;
    for (const s of placed.stations.values()) {
      expect(s.x - s.size[0] / 2).toBeGreaterThanOrEqual(bounds.minX);
      expect(s.x + s.size[0] / 2).toBeLessThanOrEqual(bounds.maxX);
      expect(s.z - s.size[2] / 2).toBeGreaterThanOrEqual(bounds.minZ);
      expect(s.z + s.size[2] / 2).toBeLessThanOrEqual(bounds.maxZ);
    }
  });

  it('survives an empty layout', () => {
    const empty = computeLayout({ name: 'x', lines: [] });
    expect(empty.lines).toEqual([]);
    expect(Number.isFinite(empty.size.x)).toBe(true);
    expect(computeLayout(null).stations.size).toBe(0);
  });
});

describe('keySignalNames', () => {
  it('prefers channels with a role, in layout order', () => {
    const channels = LAYOUT.lines[0].stations[0].channels;
    expect(keySignalNames(channels, [])).toEqual(['spindle_load', 'vibration_rms', 'temperature']);
  });
  it('falls back to reported signals', () => {
    expect(keySignalNames([], [{ name: 'a' }, { name: 'b' }])).toEqual(['a', 'b']);
  });
});
