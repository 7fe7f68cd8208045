// The API client: the key lives in sessionStorage only (never a cookie, never the URL) and goes in
// the Authorization header of every request. Errors carry the problem details the server sent.
const KEY = 'strata.key';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); session.me = null; },
  /** GET /v1/whoami: name, role, permissions. */
  me: null,
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function can(permission) {
  return Boolean(session.me?.permissions?.includes(permission));
}

function headers(extra) {
  const h = new Headers(extra);
  if (session.key) h.set('authorization', `Bearer ${session.key}`);
  return h;
}

/** fetch() with the key; throws ApiError for a non-2xx answer. */
export async function apiRaw(path, init = {}) {
  const res = await fetch(path, { ...init, headers: headers(init.headers), credentials: 'omit', cache: 'no-store' });
  if (!res.ok) {
    let problem = null;
    try { problem = await res.json(); } catch { /* not JSON */ }
    if (res.status === 401 && path !== '/v1/whoami') window.dispatchEvent(new Event('strata:signed-out'));
    throw new ApiError(res.status, problem ?? { status: res.status, detail: res.statusText });
  }
  return res;
}

export async function api(path, init = {}) {
  const res = await apiRaw(path, init);
  return res.json();
}

export function post(path, body, method = 'POST') {
  return api(path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** Upload with XMLHttpRequest, for its upload progress events. */
export function upload(path, file, { contentType, idempotencyKey, provenance, onProgress }) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('authorization', `Bearer ${session.key}`);
    xhr.setRequestHeader('content-type', contentType);
    if (idempotencyKey) xhr.setRequestHeader('idempotency-key', idempotencyKey);
    // Header values are Latin-1: characters beyond ASCII go as JSON \u escapes.
    if (provenance) xhr.setRequestHeader('strata-provenance', JSON.stringify(provenance).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
    const encoded = encodeURIComponent(file.name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const ascii = file.name.replace(/[^\x20-\x7e]|["\\]/g, '_');
    xhr.setRequestHeader('content-disposition', `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      let body;
      try { body = JSON.parse(xhr.responseText); } catch { body = { detail: xhr.responseText }; }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: { detail: 'the connection failed' } });
    xhr.send(file);
  });
}
