// The page and its state live in the URL's fragment (#/page?state), so every view can be reloaded
// and shared; the key never is in it.
export function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { path: path || 'streams', params: new URLSearchParams(query) };
}

/** Replaces the URL's state without re-rendering (the chart keeps its view in it). */
export function setState(path, params) {
  const q = params.toString();
  history.replaceState(null, '', `#/${path}${q ? `?${q}` : ''}`);
}
