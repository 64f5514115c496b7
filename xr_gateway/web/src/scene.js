// The 3D factory floor: one mesh group per machine, conveyors, buffers, labels, alarm pulses,
// selection, camera framing, WebXR-ready renderer. Renders on demand (or every XR frame).

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { CSS2DObject, CSS2DRenderer } from 'three/addons/renderers/CSS2DRenderer.js';
import { stateColor, UNKNOWN_COLOR, isUnacked } from './palette.js';

const FLOOR_COLOR = 0x1e293b;
const ACCENT_COLOR = 0x64748b;
const CONVEYOR_COLOR = 0x334155;
const CAMERA_ELEVATION = (35 * Math.PI) / 180;
const PULSE_HZ_UNACK = 1.6;
const PULSE_HZ_ACK = 0.5;

function lambert(color, extra = {}) {
  return new THREE.MeshLambertMaterial({ color, ...extra });
}

/** Accents (grey) that make a machine type recognisable; kept off the body's front face. */
function accents(machineType, [w, h, d]) {
  const parts = [];
  const grey = lambert(ACCENT_COLOR);
  const box = (sx, sy, sz, x, y, z) => {
    const m = new THREE.Mesh(new THREE.BoxGeometry(sx, sy, sz), grey);
    m.position.set(x, y, z);
    parts.push(m);
  };
  const cyl = (r, len, x, y, z, rotZ = 0) => {
    const m = new THREE.Mesh(new THREE.CylinderGeometry(r, r, len, 16), grey);
    m.position.set(x, y, z);
    m.rotation.z = rotZ;
    parts.push(m);
  };
  switch (machineType) {
    case 'cnc': // control pendant on the side, chip conveyor at the back
      box(0.25, 0.9, 0.6, w / 2 + 0.14, h * 0.6, d * 0.2);
      box(w * 0.8, 0.35, 0.5, 0, 0.18, -d / 2 - 0.25);
      break;
    case 'press': // crown on top, hydraulic unit on the side
      box(w * 1.1, 0.45, d * 1.05, 0, h + 0.22, 0);
      box(0.5, 1.0, d * 0.6, -w / 2 - 0.26, 0.5, 0);
      break;
    case 'welder': // robot arm on top
      cyl(0.25, 0.3, 0, h + 0.15, 0);
      cyl(0.1, 1.1, 0.3, h + 0.7, 0, -0.6);
      cyl(0.08, 0.8, 0.85, h + 1.0, 0, 1.1);
      break;
    case 'paint': // exhaust stack and filter box
      cyl(0.25, 1.0, -w * 0.25, h + 0.5, -d * 0.2);
      box(0.8, 0.4, 0.8, w * 0.2, h + 0.2, -d * 0.2);
      break;
    case 'qc': // camera gantry over the body
      box(0.12, 0.9, 0.12, -w / 2 + 0.1, h + 0.45, -d / 2 + 0.1);
      box(0.12, 0.9, 0.12, w / 2 - 0.1, h + 0.45, -d / 2 + 0.1);
      box(w, 0.12, 0.12, 0, h + 0.9, -d / 2 + 0.1);
      box(0.3, 0.25, 0.3, 0, h + 0.72, -d / 2 + 0.1);
      break;
    default:
      box(w * 0.5, 0.3, d * 0.5, 0, h + 0.15, 0);
  }
  return parts;
}

/** Height of a machine including its accents (for label and beacon placement). */
function accentTop(machineType, h) {
  return { cnc: h, press: h + 0.45, welder: h + 1.35, paint: h + 1.0, qc: h + 0.96 }[machineType] ?? h + 0.3;
}

export class FactoryScene {
  /**
   * @param {HTMLElement} container where the canvas and the label layer go
   * @param {object} placed computeLayout(...) result
   * @param {object} o
   * @param {(id: string) => HTMLElement} o.makeLabel a label element per machine
   * @param {(line: object) => HTMLElement} o.makeLineLabel a label element per line
   * @param {(id: string|null) => void} o.onSelect a machine was picked in the scene
   */
  constructor(container, placed, { makeLabel, makeLineLabel, onSelect }) {
    this.container = container;
    this.placed = placed;
    this.onSelect = onSelect || (() => {});
    this.machines = new Map(); // id -> {group, body, material, ring, beacon, outline, label, station, color, state, alarms, unacked}
    this.selected = null;
    this.dirty = true;
    this.labelsDirty = true;
    this.userMovedCamera = false;
    this.t0 = performance.now();

    const renderer = new THREE.WebGLRenderer({ antialias: true, powerPreference: 'high-performance' });
    renderer.setPixelRatio(Math.min(2, window.devicePixelRatio || 1));
    renderer.outputColorSpace = THREE.SRGBColorSpace;
    renderer.xr.enabled = true;
    renderer.domElement.id = 'scene-canvas';
    renderer.domElement.setAttribute('aria-label', 'factory floor');
    container.appendChild(renderer.domElement);
    this.renderer = renderer;

    const labels = new CSS2DRenderer();
    labels.domElement.className = 'label-layer';
    container.appendChild(labels.domElement);
    this.labelRenderer = labels;

    const scene = new THREE.Scene();
    scene.background = new THREE.Color(0x0f172a);
    this.scene = scene;
    // Everything on the floor hangs off `world`, which XR sessions move and scale.
    this.world = new THREE.Group();
    scene.add(this.world);

    // Front and top faces get the same light, so a body's pixel reads as its state colour:
    // (ambient + directional * cos 45°) / π ≈ 1 on both; side faces are darker for depth.
    scene.add(new THREE.AmbientLight(0xffffff, 1.2));
    const sun = new THREE.DirectionalLight(0xffffff, 2.75);
    sun.position.set(0, 10, 10);
    scene.add(sun);
    scene.add(sun.target);

    this.camera = new THREE.PerspectiveCamera(45, 1, 0.1, 500);
    this.controls = new OrbitControls(this.camera, renderer.domElement);
    this.controls.maxPolarAngle = Math.PI / 2 - 0.05;
    this.controls.addEventListener('change', () => {
      this.dirty = true;
      this.labelsDirty = true;
    });
    this.controls.addEventListener('start', () => {
      this.userMovedCamera = true;
    });

    this._buildFloor();
    for (const line of placed.lines) this._buildLine(line, makeLabel, makeLineLabel);
    this._bindPicking();
    this._bindXR();

    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize();
    this.frameAll();
    renderer.setAnimationLoop((time, frame) => this._loop(time, frame));
  }

  // -- building ----------------------------------------------------------------------------------

  _buildFloor() {
    const { size, center } = this.placed;
    const cells = Math.ceil(Math.max(size.x, size.z) + 10);
    const floor = new THREE.Mesh(new THREE.PlaneGeometry(cells, cells), lambert(FLOOR_COLOR));
    floor.rotation.x = -Math.PI / 2;
    floor.position.set(center.x, 0, center.z);
    floor.name = 'floor';
    this.world.add(floor);
    const grid = new THREE.GridHelper(cells, cells, 0x475569, 0x334155);
    grid.position.set(center.x, 0.005, center.z);
    this.world.add(grid);
  }

  _buildLine(line, makeLabel, makeLineLabel) {
    if (makeLineLabel) {
      const el = makeLineLabel(line);
      const obj = new CSS2DObject(el);
      obj.position.set(line.label.x, 0.3, line.label.z);
      this.world.add(obj);
    }
    for (const c of line.conveyors) {
      const length = c.x1 - c.x0;
      const belt = new THREE.Mesh(new THREE.BoxGeometry(length, 0.12, 0.9), lambert(CONVEYOR_COLOR));
      belt.position.set((c.x0 + c.x1) / 2, c.y - 0.06, c.z);
      const frame = new THREE.Mesh(new THREE.BoxGeometry(length, c.y - 0.12, 0.5), lambert(0x1f2937));
      frame.position.set((c.x0 + c.x1) / 2, (c.y - 0.12) / 2, c.z);
      this.world.add(belt, frame);
      // Rollers as stripes across the belt.
      const stripes = Math.floor(length / 0.4);
      const stripeGeo = new THREE.BoxGeometry(0.05, 0.01, 0.88);
      const stripeMat = lambert(0x475569);
      for (let i = 1; i < stripes; i++) {
        const s = new THREE.Mesh(stripeGeo, stripeMat);
        s.position.set(c.x0 + (i * length) / stripes, c.y + 0.005, c.z);
        this.world.add(s);
      }
    }
    for (const station of line.stations) {
      if (station.buffer) this._buildBuffer(station);
      this._buildMachine(station, makeLabel);
    }
  }

  _buildBuffer(station) {
    const b = station.buffer;
    const [l, h, d] = b.size;
    const geo = new THREE.BoxGeometry(l, h, d);
    const box = new THREE.Mesh(geo, new THREE.MeshLambertMaterial({ color: 0x94a3b8, transparent: true, opacity: 0.35 }));
    box.position.set(b.x, h / 2, b.z);
    const edges = new THREE.LineSegments(new THREE.EdgesGeometry(geo), new THREE.LineBasicMaterial({ color: 0xcbd5e1 }));
    edges.position.copy(box.position);
    box.name = `buffer:${station.id}`;
    // Slots: one tick per part of capacity along the top edge.
    const n = Math.min(40, Number(b.capacity) || 0);
    const tickGeo = new THREE.BoxGeometry(0.04, 0.02, d * 0.9);
    const tickMat = new THREE.MeshBasicMaterial({ color: 0xe2e8f0 });
    for (let i = 1; i < n; i++) {
      const t = new THREE.Mesh(tickGeo, tickMat);
      t.position.set(b.x - l / 2 + (i * l) / n, h + 0.01, b.z);
      this.world.add(t);
    }
    this.world.add(box, edges);
  }

  _buildMachine(station, makeLabel) {
    const [w, h, d] = station.size;
    const group = new THREE.Group();
    group.position.set(station.x, 0, station.z);
    group.name = `machine:${station.id}`;
    const material = lambert(UNKNOWN_COLOR);
    const body = new THREE.Mesh(new THREE.BoxGeometry(w, h, d), material);
    body.position.y = h / 2;
    body.name = `body:${station.id}`;
    group.add(body);
    for (const part of accents(station.machineType, station.size)) group.add(part);
    group.traverse((o) => {
      o.userData.machineId = station.id;
    });

    // Alarm pulse: a ring on the floor and a beacon on top (never over the body's front face).
    const ringMat = new THREE.MeshBasicMaterial({ color: 0xef4444, transparent: true, opacity: 0.8, side: THREE.DoubleSide, depthWrite: false });
    const r = Math.hypot(w, d) / 2 + 0.25;
    const ring = new THREE.Mesh(new THREE.RingGeometry(r, r + 0.35, 48), ringMat);
    ring.rotation.x = -Math.PI / 2;
    ring.position.y = 0.02;
    ring.visible = false;
    ring.raycast = () => {};
    group.add(ring);
    const top = accentTop(station.machineType, h);
    const beaconMat = new THREE.MeshBasicMaterial({ color: 0xef4444, transparent: true, opacity: 1 });
    const beacon = new THREE.Mesh(new THREE.CylinderGeometry(0.14, 0.14, 0.3, 16), beaconMat);
    beacon.position.set(-w / 2 + 0.25, Math.max(h, top) + 0.15, -d / 2 + 0.25);
    beacon.visible = false;
    group.add(beacon);

    // Selection outline around the body's edges.
    const outline = new THREE.LineSegments(
      new THREE.EdgesGeometry(new THREE.BoxGeometry(w + 0.16, h + 0.16, d + 0.16)),
      new THREE.LineBasicMaterial({ color: 0xffffff }),
    );
    outline.position.y = h / 2;
    outline.visible = false;
    outline.raycast = () => {};
    group.add(outline);

    let labelObject = null;
    let labelEl = null;
    if (makeLabel) {
      labelEl = makeLabel(station.id);
      labelObject = new CSS2DObject(labelEl);
      labelObject.center.set(0.5, 1); // the label's bottom edge sits on the anchor: above the machine
      labelObject.position.set(0, Math.max(h, top) + 0.45, 0);
      group.add(labelObject);
    }
    this.world.add(group);
    this.machines.set(station.id, {
      id: station.id,
      station,
      group,
      body,
      material,
      ring,
      beacon,
      outline,
      label: labelEl,
      color: UNKNOWN_COLOR,
      state: null,
      alarms: 0,
      unacked: false,
      severe: false,
    });
  }

  // -- updates -----------------------------------------------------------------------------------

  /** Show a machine's state and alarms. `alarms`: array of open alarms ({status, severity}). */
  setMachine(id, state, alarms) {
    const m = this.machines.get(id);
    if (!m) return;
    const color = stateColor(state);
    if (color !== m.color) {
      m.material.color.set(color);
      m.color = color;
    }
    m.state = state || null;
    m.alarms = alarms.length;
    m.unacked = alarms.some((a) => isUnacked(a.status));
    m.severe = alarms.some((a) => a.severity === 'CRITICAL' || a.severity === 'MAJOR');
    const alarmColor = m.severe ? 0xef4444 : 0xf97316;
    m.ring.material.color.set(alarmColor);
    m.beacon.material.color.set(alarmColor);
    m.ring.visible = m.alarms > 0;
    m.beacon.visible = m.alarms > 0;
    if (!m.alarms) {
      m.ring.scale.setScalar(1);
      m.ring.material.opacity = 0.8;
    }
    this.dirty = true;
  }

  select(id) {
    if (this.selected && this.machines.has(this.selected)) this.machines.get(this.selected).outline.visible = false;
    this.selected = id && this.machines.has(id) ? id : null;
    if (this.selected) this.machines.get(this.selected).outline.visible = true;
    this.dirty = true;
  }

  requestRender({ labels = false } = {}) {
    this.dirty = true;
    if (labels) this.labelsDirty = true;
  }

  /** Canvas-relative CSS pixels of a machine body's centre (for a click or a screenshot sample). */
  screenPosition(id) {
    const m = this.machines.get(id);
    if (!m) return null;
    this.camera.updateMatrixWorld();
    const p = new THREE.Vector3();
    m.body.getWorldPosition(p);
    p.project(this.camera);
    const rect = this.renderer.domElement.getBoundingClientRect();
    return { x: ((p.x + 1) / 2) * rect.width, y: ((1 - p.y) / 2) * rect.height };
  }

  view() {
    const out = {};
    for (const [id, m] of this.machines) out[id] = { state: m.state || 'UNKNOWN', alarms: m.alarms, color: m.color };
    return out;
  }

  // -- camera ------------------------------------------------------------------------------------

  /** Put the camera in front of the floor, high enough to see every line, everything in frame. */
  frameAll() {
    const { bounds, center } = this.placed;
    const target = new THREE.Vector3(center.x, 1.0, center.z);
    const dir = new THREE.Vector3(0, Math.sin(CAMERA_ELEVATION), Math.cos(CAMERA_ELEVATION));
    const corners = [];
    for (const x of [bounds.minX - 0.5, bounds.maxX + 0.5])
      for (const z of [bounds.minZ - 1, bounds.maxZ + 1]) for (const y of [0, 4.5]) corners.push(new THREE.Vector3(x, y, z));
    const cam = this.camera;
    const fits = (dist) => {
      cam.position.copy(target).addScaledVector(dir, dist);
      cam.lookAt(target);
      cam.updateMatrixWorld();
      return corners.every((c) => {
        const p = c.clone().project(cam);
        return p.z < 1 && Math.abs(p.x) <= 0.92 && Math.abs(p.y) <= 0.88;
      });
    };
    let lo = 2;
    let hi = 400;
    for (let i = 0; i < 40; i++) {
      const mid = (lo + hi) / 2;
      if (fits(mid)) hi = mid;
      else lo = mid;
    }
    fits(hi);
    this.controls.target.copy(target);
    this.controls.maxDistance = hi * 3;
    this.controls.update();
    this.dirty = true;
    this.labelsDirty = true;
  }

  resize() {
    const w = Math.max(1, this.container.clientWidth);
    const h = Math.max(1, this.container.clientHeight);
    if (this.renderer.xr.isPresenting) return;
    this.renderer.setSize(w, h, true);
    this.labelRenderer.setSize(w, h);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    if (!this.userMovedCamera) this.frameAll();
    this.dirty = true;
    this.labelsDirty = true;
    // Draw now: a screenshot or a click right after a resize must see the new frame.
    this._render(true);
  }

  // -- picking -----------------------------------------------------------------------------------

  _pick(raycaster) {
    const bodies = [];
    for (const m of this.machines.values()) bodies.push(m.group);
    const hits = raycaster.intersectObjects(bodies, true);
    for (const hit of hits) {
      const id = hit.object.userData.machineId;
      if (id && hit.object.visible) return id;
    }
    return null;
  }

  _bindPicking() {
    const canvas = this.renderer.domElement;
    const raycaster = new THREE.Raycaster();
    let down = null;
    canvas.addEventListener('pointerdown', (e) => {
      down = { x: e.clientX, y: e.clientY, t: performance.now(), id: e.pointerId };
    });
    canvas.addEventListener('pointerup', (e) => {
      if (!down || down.id !== e.pointerId) return;
      const moved = Math.hypot(e.clientX - down.x, e.clientY - down.y);
      const quick = performance.now() - down.t < 800;
      down = null;
      if (moved > 6 || !quick) return;
      const rect = canvas.getBoundingClientRect();
      const ndc = new THREE.Vector2(((e.clientX - rect.left) / rect.width) * 2 - 1, -((e.clientY - rect.top) / rect.height) * 2 + 1);
      raycaster.setFromCamera(ndc, this.camera);
      const id = this._pick(raycaster);
      if (id) this.onSelect(id);
    });
  }

  // -- WebXR -------------------------------------------------------------------------------------

  _bindXR() {
    const xr = this.renderer.xr;
    xr.setReferenceSpaceType('local-floor');
    const raycaster = new THREE.Raycaster();
    const matrix = new THREE.Matrix4();
    for (let i = 0; i < 2; i++) {
      const controller = xr.getController(i);
      const ray = new THREE.Line(
        new THREE.BufferGeometry().setFromPoints([new THREE.Vector3(0, 0, 0), new THREE.Vector3(0, 0, -1)]),
        new THREE.LineBasicMaterial({ color: 0xffffff }),
      );
      ray.scale.z = 8;
      ray.raycast = () => {};
      controller.add(ray);
      controller.addEventListener('select', () => {
        matrix.identity().extractRotation(controller.matrixWorld);
        raycaster.ray.origin.setFromMatrixPosition(controller.matrixWorld);
        raycaster.ray.direction.set(0, 0, -1).applyMatrix4(matrix);
        const id = this._pick(raycaster);
        if (id) this.onSelect(id);
      });
      this.scene.add(controller);
    }
    xr.addEventListener('sessionstart', () => {
      const session = xr.getSession();
      const ar = session && session.environmentBlendMode && session.environmentBlendMode !== 'opaque';
      const { center, bounds } = this.placed;
      if (ar) {
        // A table-top model 1:20, a metre and a half in front of the viewer.
        const s = 0.05;
        this.world.scale.setScalar(s);
        this.world.position.set(-center.x * s, 0.8, -1.5 - center.z * s);
        this.scene.background = null;
      } else {
        // Full scale: stand 3 m in front of the nearest line, facing the floor (-z is forward).
        this.world.scale.setScalar(1);
        this.world.position.set(-center.x, 0, -(bounds.maxZ + 3) + 0);
        this.world.rotation.y = 0;
      }
      this.labelRenderer.domElement.style.display = 'none';
    });
    xr.addEventListener('sessionend', () => {
      this.world.scale.setScalar(1);
      this.world.position.set(0, 0, 0);
      this.scene.background = new THREE.Color(0x0f172a);
      this.labelRenderer.domElement.style.display = '';
      this.resize();
    });
  }

  // -- rendering ---------------------------------------------------------------------------------

  _animatePulses(t) {
    let any = false;
    for (const m of this.machines.values()) {
      if (!m.alarms) continue;
      any = true;
      const hz = m.unacked ? PULSE_HZ_UNACK : PULSE_HZ_ACK;
      const k = 0.5 + 0.5 * Math.sin(t * Math.PI * 2 * hz);
      m.ring.material.opacity = m.unacked ? 0.25 + 0.7 * k : 0.55 + 0.2 * k;
      m.ring.scale.setScalar(1 + (m.unacked ? 0.12 : 0.04) * k);
      m.beacon.material.opacity = m.unacked ? 0.35 + 0.65 * k : 0.9;
    }
    return any;
  }

  _render(force = false) {
    const xr = this.renderer.xr.isPresenting;
    this.renderer.render(this.scene, this.camera);
    if (!xr && (this.labelsDirty || force)) {
      this.labelRenderer.render(this.scene, this.camera);
      this.labelsDirty = false;
    }
    this.dirty = false;
  }

  _loop() {
    const t = (performance.now() - this.t0) / 1000;
    const pulsing = this._animatePulses(t);
    if (this.renderer.xr.isPresenting || this.dirty || pulsing) this._render();
  }

  dispose() {
    this.renderer.setAnimationLoop(null);
    this.resizeObserver.disconnect();
    this.controls.dispose();
    this.renderer.dispose();
  }
}
