// Small DOM helpers: h() builds elements (text is always set as text, never parsed as HTML),
// formatting of times, numbers and sizes, copying and downloading.

/** h('tag.class', {attr: value, onclick: fn}, ...children) */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export const nextId = (prefix = 'f') => `${prefix}${++uid}`;

/** A labelled control: <label for> + control, wrapped. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId();
  return h('div.field', {}, h('label', { for: control.id }, label), control, hint ? h('small', {}, hint) : null);
}

export function fmtTime(iso, tz) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  try {
    // sv-SE writes ISO-like dates: 2024-03-01 00:29:09
    return d.toLocaleString('sv-SE', { timeZone: tz || undefined, hour12: false });
  } catch {
    return d.toISOString();
  }
}

export function fmtNum(n) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString('en-US');
}

export function fmtAgo(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

export function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 4000);
}

export function copyButton(text, label = 'Copy') {
  return h('button.small', {
    type: 'button', 'aria-label': `${label}: ${text.length > 20 ? `${text.slice(0, 12)}…` : text}`,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        toast('Copied');
      } catch {
        toast('Copy failed: select the text and copy it');
      }
    },
  }, label);
}

export function downloadBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A JSON value, shown in a collapsible block. */
export function jsonBlock(summary, value) {
  if (value === null || value === undefined || (typeof value === 'object' && Object.keys(value).length === 0)) {
    return h('p.muted', {}, `${summary}: none`);
  }
  return h('details', {}, h('summary', {}, summary), h('pre', {}, JSON.stringify(value, null, 2)));
}

export function table(headers, rows, caption) {
  return h('div.tablewrap', {}, h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows)));
}

/** A modal confirmation with a required reason; resolves to the reason or null. */
export function askReason(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const reason = h('textarea', { required: true, rows: 3, maxlength: 4096 });
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'dlg-title' }, title),
        h('p', {}, text),
        field('Reason (required, recorded in the audit log)', reason),
        h('div.row', {},
          h('button', { type: 'button', value: 'cancel', onclick: () => dlg.close('cancel') }, 'Cancel'),
          h('button.danger', { type: 'submit', value: 'ok' }, confirmLabel))));
    dlg.querySelector('form').addEventListener('submit', (e) => {
      if (!reason.value.trim()) {
        e.preventDefault();
        reason.focus();
      }
    });
    dlg.addEventListener('close', () => {
      const ok = dlg.returnValue === 'ok' && reason.value.trim();
      dlg.remove();
      resolve(ok ? reason.value.trim() : null);
    });
    document.body.append(dlg);
    dlg.showModal();
    reason.focus();
  });
}

export function problemText(err) {
  const p = err.problem;
  if (!p) return String(err.message ?? err);
  return `${p.status ?? ''} ${p.code ?? ''}: ${p.detail ?? p.title ?? ''}`.trim();
}
