import { describe, expect, it } from 'vitest';
import { TOKEN_KEY, gatewayUrls, hashWithoutToken, takeToken, tokenFromHash } from '../src/config.js';

const loc = (href) => {
  const u = new URL(href);
  return { href: u.href, origin: u.origin, pathname: u.pathname, search: u.search, hash: u.hash, host: u.host };
};
const memoryStorage = () => {
  const data = new Map();
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => data.set(k, String(v)), removeItem: (k) => data.delete(k) };
};

describe('gatewayUrls', () => {
  it('defaults to the page origin', () => {
    expect(gatewayUrls(loc('http://127.0.0.1:8765/'))).toEqual({ http: 'http://127.0.0.1:8765', ws: 'ws://127.0.0.1:8765/ws' });
    expect(gatewayUrls(loc('https://xr.example.com/index.html#token=x'))).toEqual({ http: 'https://xr.example.com', ws: 'wss://xr.example.com/ws' });
  });
  it('follows a path prefix (behind a proxy)', () => {
    expect(gatewayUrls(loc('https://h.example/twin/'))).toEqual({ http: 'https://h.example/twin', ws: 'wss://h.example/twin/ws' });
  });
  it('takes ?gateway= for the dev server', () => {
    expect(gatewayUrls(loc('http://localhost:5173/?gateway=http://127.0.0.1:8791'))).toEqual({ http: 'http://127.0.0.1:8791', ws: 'ws://127.0.0.1:8791/ws' });
    expect(gatewayUrls(loc('http://localhost:5173/?gateway=https://gw.example/'))).toEqual({ http: 'https://gw.example', ws: 'wss://gw.example/ws' });
  });
});

describe('token from the fragment', () => {
  it('parses #token=', () => {
    expect(tokenFromHash('#token=abc.def.ghi')).toBe('abc.def.ghi');
    expect(tokenFromHash('#x=1&token=t')).toBe('t');
    expect(tokenFromHash('')).toBeNull();
    expect(tokenFromHash('#nothing')).toBeNull();
    expect(hashWithoutToken('#x=1&token=t')).toBe('#x=1');
    expect(hashWithoutToken('#token=t')).toBe('');
  });

  it('stores it and scrubs the address bar', () => {
    const storage = memoryStorage();
    const calls = [];
    const history = { state: null, replaceState: (...a) => calls.push(a) };
    const token = takeToken(loc('http://h/?gateway=x#token=jwt1'), storage, history);
    expect(token).toBe('jwt1');
    expect(storage.getItem(TOKEN_KEY)).toBe('jwt1');
    expect(calls).toEqual([[null, '', '/?gateway=x']]);
  });

  it('falls back to sessionStorage, or null', () => {
    const storage = memoryStorage();
    expect(takeToken(loc('http://h/'), storage, null)).toBeNull();
    storage.setItem(TOKEN_KEY, 'kept');
    expect(takeToken(loc('http://h/'), storage, null)).toBe('kept');
  });
});
