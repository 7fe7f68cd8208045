// Audit: the paged log (filter by action and subject) and verification of its hash chain: ok with
// the entry count and the head hash (copyable), or the first bad entry and why.
import { api, qs } from './api.js';
import { h, clear, field, fmtTime, table, copyButton, problemText } from './dom.js';

const PAGE = 50;

export async function auditPage(root) {
  root.append(h('h1', {}, 'Audit log'));
  const result = h('div.verify', { 'aria-live': 'polite' });
  const verify = h('button.primary', {
    type: 'button',
    onclick: async () => {
      verify.disabled = true;
      clear(result, h('p', {}, 'Verifying the hash chain…'));
      try {
        const v = await api('/v1/audit/verify');
        clear(result, v.ok
          ? h('p.ok', { dataset: { ok: 'true' } }, `✓ The chain is intact: ${v.entries} entries. Head hash `, h('code.sha', { id: 'audit-head' }, v.head ?? '—'), ' ', v.head ? copyButton(v.head, 'Copy head hash') : null)
          : h('p.error', { role: 'alert', dataset: { ok: 'false' } }, `✗ The chain is broken at entry ${v.first_bad}: ${v.reason} (${v.entries} entries verified before it).`));
      } catch (x) {
        clear(result, h('p.error', { role: 'alert' }, problemText(x)));
      } finally {
        verify.disabled = false;
      }
    },
  }, 'Verify the log');
  root.append(h('div.row', {}, verify), result);

  const action = h('input', { type: 'text', placeholder: 'ingest.commit', spellcheck: 'false' });
  const subject = h('input', { type: 'text', placeholder: 'stream:lab1', spellcheck: 'false' });
  const list = h('div');
  const cursors = [];
  root.append(h('form.controls', { onsubmit: (e) => { e.preventDefault(); cursors.length = 0; load(0); } },
    h('div.row', {}, field('Action', action), field('Subject', subject), h('button', { type: 'submit' }, 'Filter'))), list);

  async function load(after) {
    let page;
    try {
      page = await api(`/v1/audit${qs({ after, limit: PAGE, action: action.value.trim(), subject: subject.value.trim() })}`);
    } catch (x) {
      clear(list, h('p.error', { role: 'alert' }, problemText(x)));
      return;
    }
    const rows = page.entries.map((e) => h('tr', {},
      h('td.num', {}, e.seq), h('td', {}, fmtTime(e.at)), h('td', {}, e.actor_key_id === null ? (e.actor_role ?? 'system') : `key #${e.actor_key_id} (${e.actor_role})`),
      h('td', {}, e.action), h('td', {}, e.subject),
      h('td', {}, h('details', {}, h('summary', {}, 'details'), h('pre', {}, JSON.stringify(e.details, null, 2)), h('p', {}, 'hash ', h('code.sha', {}, e.hash))))));
    clear(list, page.entries.length ? table(['Seq', 'At', 'Actor', 'Action', 'Subject', ''], rows) : h('p', {}, 'No entries.'),
      h('div.row.pager', {},
        cursors.length ? h('button', { type: 'button', onclick: () => { cursors.pop(); load(cursors.at(-1) ?? 0); } }, '← Earlier') : null,
        page.next_after !== null && page.next_after !== undefined && page.entries.length === PAGE
          ? h('button', { type: 'button', onclick: () => { cursors.push(page.next_after); load(page.next_after); } }, 'Later →') : null));
  }
  await load(0);
}
