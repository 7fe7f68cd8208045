// The console's shell: sign-in, the navigation (only the pages the key's role may use), and a
// hash router (router.js).
import { api, session, can } from './api.js';
import { h, clear, field, problemText } from './dom.js';
import { streamsPage } from './streams.js';
import { chartPage } from './chart.js';
import { ingestsPage } from './ingests.js';
import { uploadPage } from './upload.js';
import { auditPage } from './audit.js';
import { adminPage } from './admin.js';
import { route } from './router.js';

const pages = [
  { path: 'streams', title: 'Streams', show: () => can('streams:read'), render: streamsPage },
  { path: 'chart', title: 'Chart', show: () => can('query'), render: chartPage },
  { path: 'ingests', title: 'Ingests', show: () => can('ingests:read'), render: ingestsPage },
  { path: 'upload', title: 'Upload', show: () => can('ingest'), render: uploadPage },
  { path: 'audit', title: 'Audit', show: () => can('audit:read'), render: auditPage },
  { path: 'admin', title: 'Admin', show: () => can('jobs:read') || can('keys:admin') || can('holds:read'), render: adminPage },
];

const main = document.getElementById('main');

function signInPage(message) {
  const key = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'strata_…' });
  const err = h('p.error', { role: 'alert' }, message ?? '');
  const form = h('form.card.signin', {
    onsubmit: async (e) => {
      e.preventDefault();
      session.set(key.value.trim());
      try {
        session.me = await api('/v1/whoami');
        render();
      } catch (x) {
        session.clear();
        err.textContent = x.status === 401 ? 'This key is unknown or revoked.' : problemText(x);
      }
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'Paste an API key. The first ', h('code', {}, 'npm start'), ' prints the admin key and writes it to ', h('code', {}, '.strata/admin-key'), '. ',
    'The key is kept in this tab only (sessionStorage) and forgotten when the tab closes.'),
  field('API key', key),
  h('button.primary', { type: 'submit' }, 'Sign in'),
  err);
  clear(main, form);
  clear(document.getElementById('nav'));
  clear(document.getElementById('who'));
  key.focus();
}

function renderNav(current) {
  const nav = document.getElementById('nav');
  clear(nav, h('ul', {}, pages.filter((p) => p.show()).map((p) =>
    h('li', {}, h('a', { href: `#/${p.path}`, 'aria-current': p.path === current ? 'page' : null }, p.title)))));
  const me = session.me;
  clear(document.getElementById('who'),
    h('span', { title: me.streams ? `streams: ${me.streams.join(', ')}` : 'all streams' }, h('strong', {}, me.name), ' · ', h('span.role', {}, me.role)),
    h('button.small', { type: 'button', onclick: () => { session.clear(); signInPage('Signed out.'); } }, 'Sign out'));
}

let rendering = 0;
export async function render() {
  const n = ++rendering;
  if (!session.key) return signInPage();
  if (!session.me) {
    try {
      session.me = await api('/v1/whoami');
    } catch (x) {
      session.clear();
      return signInPage(x.status === 401 ? 'This key is unknown or revoked.' : problemText(x));
    }
  }
  const { path, params } = route();
  const page = pages.find((p) => p.path === path && p.show()) ?? pages.find((p) => p.show());
  renderNav(page.path);
  document.title = `${page.title} · Strata`;
  const root = h('div.page');
  clear(main, root);
  try {
    await page.render(root, params, () => n === rendering);
  } catch (x) {
    root.append(h('p.error', { role: 'alert' }, problemText(x)));
  }
}

window.addEventListener('hashchange', () => { render(); main.focus({ preventScroll: true }); });
window.addEventListener('strata:signed-out', () => { session.clear(); signInPage('The key was refused (unknown or revoked). Sign in again.'); });
render();
