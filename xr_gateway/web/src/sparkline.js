// A tiny line chart on a canvas: the last values of one signal. NaN (a dropped sample) is a gap.

export function drawSparkline(canvas, values, { color = '#38bdf8', fill = 'rgba(56,189,248,0.12)' } = {}) {
  const ratio = Math.min(2, globalThis.devicePixelRatio || 1);
  const cssW = canvas.clientWidth || Number(canvas.getAttribute('width')) || 160;
  const cssH = canvas.clientHeight || Number(canvas.getAttribute('height')) || 32;
  const w = Math.round(cssW * ratio);
  const h = Math.round(cssH * ratio);
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, w, h);
  const finite = values.filter((v) => Number.isFinite(v));
  canvas.dataset.points = String(values.length);
  if (!finite.length) return;
  const { min, max } = sparkRange(finite);
  const pad = 2 * ratio;
  const n = values.length;
  const x = (i) => (n <= 1 ? w - pad : pad + (i * (w - 2 * pad)) / (n - 1));
  const y = (v) => h - pad - ((v - min) / (max - min)) * (h - 2 * pad);
  ctx.lineWidth = 1.5 * ratio;
  ctx.strokeStyle = color;
  ctx.fillStyle = fill;
  let started = false;
  ctx.beginPath();
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) {
      started = false;
      return;
    }
    if (started) ctx.lineTo(x(i), y(v));
    else ctx.moveTo(x(i), y(v));
    started = true;
  });
  ctx.stroke();
  // The latest value as a dot.
  const last = values.length - 1;
  if (Number.isFinite(values[last])) {
    ctx.beginPath();
    ctx.arc(x(last), y(values[last]), 2 * ratio, 0, Math.PI * 2);
    ctx.fillStyle = color;
    ctx.fill();
  }
}

/** The y range of a sparkline: min..max, widened when flat so a constant draws mid-height. */
export function sparkRange(values) {
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (max - min < 1e-9) {
    const d = Math.abs(max) * 0.05 || 1;
    min -= d;
    max += d;
  }
  return { min, max };
}
