// Ingests: a filtered, paged list (stream, status, time, instrument); rejected uploads with their
// reasons; a record's details; retraction (admin, auditor) with a reason and a confirmation.
import { api, post, can, qs } from './api.js';
import { h, clear, field, fmtTime, fmtNum, table, jsonBlock, askReason, toast, problemText } from './dom.js';
import { setState } from './router.js';

const PAGE = 50;

export async function ingestsPage(root, params) {
  root.append(h('h1', {}, 'Ingests'));
  const { streams } = await api('/v1/streams');
  const f = {
    stream: params.get('stream') ?? '', status: params.get('status') ?? '', instrument: params.get('instrument') ?? '',
    from: params.get('from') ?? '', to: params.get('to') ?? '',
  };
  const streamSel = h('select', {}, h('option', { value: '' }, 'all'), streams.map((s) => h('option', { value: s.name, selected: s.name === f.stream }, s.name)));
  const statusSel = h('select', {}, ['', 'committed', 'rejected', 'retracted'].map((s) => h('option', { value: s, selected: s === f.status }, s || 'any')));
  const instrument = h('input', { type: 'text', value: f.instrument, spellcheck: 'false' });
  const from = h('input', { type: 'text', value: f.from, placeholder: '2024-03-01T00:00:00Z', spellcheck: 'false' });
  const to = h('input', { type: 'text', value: f.to, placeholder: '2024-03-02T00:00:00Z', spellcheck: 'false' });
  const list = h('div');
  // Newest first; each older page starts before the last id shown (the ids of the pages seen are kept to go back).
  let pages = [];
  const form = h('form.controls', {
    onsubmit: (e) => {
      e.preventDefault();
      Object.assign(f, { stream: streamSel.value, status: statusSel.value, instrument: instrument.value.trim(), from: from.value.trim(), to: to.value.trim() });
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
      setState('ingests', p);
      pages = [];
      load(null);
    },
  }, h('div.row', {}, field('Stream', streamSel), field('Status', statusSel), field('Instrument', instrument),
    field('Data from', from), field('Data to', to), h('button.primary', { type: 'submit' }, 'Filter')));
  root.append(form, list);

  async function load(before) {
    let rows;
    try {
      rows = (await api(`/v1/ingests${qs({ ...f, before: before ?? undefined, limit: PAGE + 1 })}`)).ingests;
    } catch (x) {
      clear(list, h('p.error', { role: 'alert' }, problemText(x)));
      return;
    }
    const more = rows.length > PAGE;
    rows = rows.slice(0, PAGE);
    const trs = rows.map((i) => {
      const detail = h('tr.detail', { hidden: true }, h('td', { colspan: 8 }));
      const retract = can('retract') && i.status === 'committed'
        ? h('button.small.danger', { type: 'button', onclick: () => doRetract(i) }, 'Retract') : null;
      return [h('tr', { dataset: { ingest: i.id, status: i.status } },
        h('td.num', {}, i.id),
        h('td', {}, i.stream_current ?? i.stream),
        h('td', {}, h(`span.status.${i.status}`, {}, i.status), i.error ? h('div.error', {}, `${i.error.code}: ${i.error.message}`) : null,
          i.retraction ? h('div.muted', {}, `retracted: ${i.retraction.reason}`) : null),
        h('td', {}, fmtTime(i.received_at)),
        h('td', {}, i.filename ?? '—', h('div.muted', {}, i.format)),
        h('td', {}, i.instrument ?? '—'),
        h('td.num', {}, fmtNum(i.rows)),
        h('td', {}, h('button.small', { type: 'button', 'aria-expanded': 'false', onclick: (e) => toggle(e.target, detail, i) }, 'Details'), ' ', retract)),
      detail];
    });
    clear(list,
      rows.length === 0 ? h('p', {}, 'No ingests match.') : table(['Id', 'Stream', 'Status', 'Received', 'File', 'Instrument', 'Rows', ''], trs),
      h('div.row.pager', {},
        pages.length ? h('button', { type: 'button', onclick: () => { pages.pop(); load(pages.at(-1) ?? null); } }, '← Newer') : null,
        more ? h('button', { type: 'button', onclick: () => { pages.push(rows.at(-1).id); load(rows.at(-1).id); } }, 'Older →') : null));
  }

  async function toggle(btn, detail, i) {
    const open = detail.hidden;
    detail.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
    if (!open || detail.dataset.loaded) return;
    detail.dataset.loaded = '1';
    try {
      const r = await api(`/v1/ingests/${i.id}`);
      clear(detail.firstChild,
        h('dl.compact', {}, h('dt', {}, 'SHA-256'), h('dd', {}, h('code.sha', {}, r.sha256 ?? '—')),
          h('dt', {}, 'Data'), h('dd', {}, `${fmtTime(r.time_min)} → ${fmtTime(r.time_max)}`),
          h('dt', {}, 'Key'), h('dd', {}, r.key ? `${r.key.name} (${r.key.role})` : '—')),
        jsonBlock('Warnings', r.warnings), jsonBlock('Mapping', r.mapping), jsonBlock('Provenance', r.provenance),
        jsonBlock('File metadata', r.file_metadata), jsonBlock(`Audit entries (${r.audit.length})`, r.audit));
    } catch (x) {
      clear(detail.firstChild, h('p.error', {}, problemText(x)));
    }
  }

  async function doRetract(i) {
    const reason = await askReason(`Retract ingest #${i.id}?`,
      `Its ${fmtNum(i.rows)} rows are deleted from ${i.stream}; the record, its audit entries and the original stay. A retraction cannot be undone.`, 'Retract');
    if (!reason) return;
    try {
      await post(`/v1/ingests/${i.id}/retract`, { reason });
      toast(`Ingest #${i.id} retracted`);
      load(pages.at(-1) ?? null);
    } catch (x) {
      toast(`Refused: ${problemText(x)}`);
    }
  }

  await load(null);
}
