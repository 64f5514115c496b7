// Factory layout (GET /api/layout) -> floor positions in metres. Pure: no Three.js here.
//
// Each line is a row along +x, lines stack along +z; stations in flow order, a conveyor between
// consecutive stations, and the input buffer of a station beside the conveyor that feeds it. The
// whole floor is centred on the origin; y is up and the floor is y = 0.

export const STATION_SPACING = 6; // m between station centres
export const LINE_SPACING = 12; // m between line rows
export const CONVEYOR_HEIGHT = 0.8; // m, top of the belt
export const BUFFER_OFFSET_Z = 1.4; // m beside the conveyor (towards the viewer)
export const BUFFER_SLOT_M = 0.25; // m of buffer length per part of capacity
export const BUFFER_MAX_LENGTH = 3.2;

/** Body size [width x, height y, depth z] per machine type; unknown types get the default. */
export const MACHINE_SIZES = Object.freeze({
  cnc: [2.4, 2.0, 2.0],
  press: [2.0, 2.8, 1.8],
  welder: [2.0, 1.5, 2.0],
  paint: [2.8, 2.4, 2.2],
  qc: [1.8, 1.5, 1.6],
  default: [2.0, 1.8, 1.8],
});

export function machineSize(machineType) {
  return MACHINE_SIZES[machineType] || MACHINE_SIZES.default;
}

/** Length of a buffer box for `capacity` parts (at least one slot, at most BUFFER_MAX_LENGTH). */
export function bufferLength(capacity) {
  const slots = Math.max(1, Number(capacity) || 1);
  return Math.min(BUFFER_MAX_LENGTH, 0.3 + slots * BUFFER_SLOT_M);
}

/**
 * Positions for every line, station, conveyor and buffer, plus the floor bounds.
 * @returns {{name, lines: Array, stations: Map<string, object>, bounds: {minX, maxX, minZ, maxZ},
 *            center: {x, z}, size: {x, z}}}
 */
export function computeLayout(layout) {
  const lines = Array.isArray(layout?.lines) ? layout.lines : [];
  const raw = [];
  let maxStations = 0;
  lines.forEach((line, row) => {
    const stations = Array.isArray(line.stations) ? line.stations : [];
    maxStations = Math.max(maxStations, stations.length);
    raw.push({ line, row, stations });
  });
  const width = Math.max(0, maxStations - 1) * STATION_SPACING;
  const depth = Math.max(0, raw.length - 1) * LINE_SPACING;
  const x0 = -width / 2;
  const z0 = -depth / 2;

  const out = [];
  const byId = new Map();
  let minX = Infinity;
  let maxX = -Infinity;
  let minZ = Infinity;
  let maxZ = -Infinity;
  const grow = (x, z, hx, hz) => {
    minX = Math.min(minX, x - hx);
    maxX = Math.max(maxX, x + hx);
    minZ = Math.min(minZ, z - hz);
    maxZ = Math.max(maxZ, z + hz);
  };

  for (const { line, row, stations } of raw) {
    const z = z0 + row * LINE_SPACING;
    const placed = stations.map((s, i) => {
      const size = machineSize(s.machine_type);
      const x = x0 + i * STATION_SPACING;
      grow(x, z, size[0] / 2, size[2] / 2);
      const capacity = s.input_buffer;
      let buffer = null;
      if (i > 0 && capacity !== null && capacity !== undefined) {
        const bx = x - STATION_SPACING / 2;
        const length = bufferLength(capacity);
        buffer = { x: bx, z: z + BUFFER_OFFSET_Z, capacity, size: [length, 0.5, 0.7] };
        grow(bx, z + BUFFER_OFFSET_Z, length / 2, 0.35);
      }
      const station = {
        id: s.id,
        lineId: line.id,
        index: i,
        machineType: s.machine_type || '',
        idealCycleTimeS: s.ideal_cycle_time_s ?? null,
        inputBuffer: capacity ?? null,
        channels: Array.isArray(s.channels) ? s.channels : [],
        x,
        z,
        size,
        center: { x, y: size[1] / 2, z },
        buffer,
      };
      byId.set(s.id, station);
      return station;
    });
    const conveyors = [];
    for (let i = 1; i < placed.length; i++) {
      const a = placed[i - 1];
      const b = placed[i];
      const from = a.x + a.size[0] / 2;
      const to = b.x - b.size[0] / 2;
      if (to > from) conveyors.push({ from: a.id, to: b.id, x0: from, x1: to, z, y: CONVEYOR_HEIGHT });
    }
    const firstX = placed.length ? placed[0].x - placed[0].size[0] / 2 : x0;
    const label = { x: firstX - 1.5, y: 0.02, z };
    if (!placed.length) grow(x0, z, 1, 1);
    out.push({ id: line.id, row, z, stations: placed, conveyors, label });
  }
  if (!Number.isFinite(minX)) {
    minX = -5;
    maxX = 5;
    minZ = -5;
    maxZ = 5;
  }
  // Room for the line labels on the left.
  minX -= 4;
  return {
    name: layout?.name || '',
    lines: out,
    stations: byId,
    bounds: { minX, maxX, minZ, maxZ },
    center: { x: (minX + maxX) / 2, z: (minZ + maxZ) / 2 },
    size: { x: maxX - minX, z: maxZ - minZ },
  };
}

/**
 * The 2-3 signals a label shows: channels with a role (load, vibration, temperature, ...) in layout
 * order, then the others; falls back to whatever the machine reports.
 */
export function keySignalNames(channels, signals, count = 3) {
  const names = [];
  const list = Array.isArray(channels) ? channels : [];
  for (const c of list) if (c.role && names.length < count) names.push(c.name);
  for (const c of list) if (!names.includes(c.name) && names.length < count) names.push(c.name);
  for (const s of signals || []) if (!names.includes(s.name) && names.length < count) names.push(s.name);
  return names;
}
