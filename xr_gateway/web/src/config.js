// Where the gateway is and which token to use: pure helpers over `location`-like objects.

export const TOKEN_KEY = 'twin.token';

/**
 * The gateway's HTTP base URL (no trailing slash) and websocket URL.
 * Default: the origin and directory the page was served from (the gateway serves the client at /);
 * `?gateway=http://127.0.0.1:8765` points a dev server (Vite) at another gateway.
 */
export function gatewayUrls(location) {
  const override = new URLSearchParams(location.search || '').get('gateway');
  let base;
  if (override) {
    const url = new URL(override, location.href);
    base = url.origin + url.pathname.replace(/\/+$/, '');
  } else {
    const dir = new URL('.', location.href);
    base = dir.origin + dir.pathname.replace(/\/+$/, '');
  }
  const ws = base.replace(/^http(s?):/i, (_m, s) => `ws${s}:`) + '/ws';
  return { http: base, ws };
}

/** The token in a URL fragment such as `#token=<jwt>` (also `#a=b&token=<jwt>`), or null. */
export function tokenFromHash(hash) {
  const text = (hash || '').replace(/^#/, '');
  if (!text) return null;
  const value = new URLSearchParams(text).get('token');
  return value ? value.trim() : null;
}

/** The hash with `token=` removed ('' when nothing else was in it). */
export function hashWithoutToken(hash) {
  const params = new URLSearchParams((hash || '').replace(/^#/, ''));
  params.delete('token');
  const rest = params.toString();
  return rest ? `#${rest}` : '';
}

/**
 * Take the token from the fragment into sessionStorage and scrub it from the address bar, so it is
 * neither bookmarked nor shared with a screenshot of the URL. Returns the token to use, or null.
 */
export function takeToken(location, storage, history) {
  const fromHash = tokenFromHash(location.hash);
  if (fromHash) {
    try {
      storage.setItem(TOKEN_KEY, fromHash);
    } catch {
      /* storage disabled: the token lives for this page only */
    }
    if (history && typeof history.replaceState === 'function') {
      history.replaceState(history.state, '', location.pathname + location.search + hashWithoutToken(location.hash));
    }
    return fromHash;
  }
  try {
    return storage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

export function storeToken(storage, token) {
  try {
    if (token) storage.setItem(TOKEN_KEY, token);
    else storage.removeItem(TOKEN_KEY);
  } catch {
    /* ignore */
  }
}
