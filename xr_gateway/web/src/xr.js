// Enter VR / Enter AR buttons over WebXR. Without WebXR (or without a headset) the buttons say so and
// stay disabled; nothing throws.

const MODES = {
  vr: { session: 'immersive-vr', label: 'VR', init: { optionalFeatures: ['local-floor', 'bounded-floor', 'hand-tracking'] } },
  ar: { session: 'immersive-ar', label: 'AR', init: { optionalFeatures: ['local-floor', 'dom-overlay'] } },
};

/**
 * Wire `button` to start an immersive session of `mode` ('vr' | 'ar') on `renderer`.
 * Resolves once support is known; returns whether the mode is supported.
 */
export async function setupXRButton(button, mode, renderer, { xr = globalThis.navigator?.xr, overlay = null } = {}) {
  const m = MODES[mode];
  const unavailable = (why) => {
    button.textContent = `${m.label} not available`;
    button.disabled = true;
    button.dataset.xr = 'unavailable';
    button.title = why;
    return false;
  };
  if (!xr || typeof xr.isSessionSupported !== 'function') {
    return unavailable(globalThis.isSecureContext === false ? 'WebXR needs HTTPS (or localhost)' : 'This browser has no WebXR');
  }
  let supported = false;
  try {
    supported = await xr.isSessionSupported(m.session);
  } catch {
    supported = false;
  }
  if (!supported) return unavailable(`No ${m.label} device or browser support`);

  let current = null;
  const idle = () => {
    button.textContent = `Enter ${m.label}`;
    button.disabled = false;
    button.dataset.xr = 'ready';
  };
  idle();
  button.addEventListener('click', async () => {
    if (current) {
      await current.end().catch(() => {});
      return;
    }
    const init = { ...m.init, optionalFeatures: [...m.init.optionalFeatures] };
    if (mode === 'ar' && overlay) init.domOverlay = { root: overlay };
    try {
      const session = await xr.requestSession(m.session, init);
      current = session;
      session.addEventListener('end', () => {
        current = null;
        idle();
      });
      await renderer.xr.setSession(session);
      button.textContent = `Exit ${m.label}`;
      button.dataset.xr = 'active';
    } catch (err) {
      current = null;
      idle();
      button.title = `Could not start ${m.label}: ${err && err.message ? err.message : err}`;
    }
  });
  return true;
}
