// The trace panel: where a point of the chart came from. For the bucket behind the point, the
// ingests holding its readings (GET /v1/streams/{s}/provenance), each with its record
// (GET /v1/ingests/{id}): file name, SHA-256, instrument, operator, attributes, mapping, warnings and
// audit entries; the original (checked against its SHA-256 here too) and the PROV-JSON to download.
import { api, apiRaw, can } from './api.js';
import { h, clear, fmtTime, fmtNum, copyButton, downloadBlob, jsonBlock, problemText } from './dom.js';
import { sha256OfBlob } from './sha256.js';

export async function openTrace(panel, p) {
  panel.hidden = false;
  const close = h('button.small.close', { type: 'button', 'aria-label': 'Close the trace', onclick: () => { panel.hidden = true; } }, '×');
  const body = h('div', {}, h('p', {}, 'Tracing…'));
  clear(panel, h('div.tracehead', {}, h('h2', {}, 'Where this point came from'), close),
    h('p', {}, h('strong', {}, p.field), ' = ', `${+Number(p.value).toPrecision(6)}${p.unit ? ` ${p.unit}` : ''}`,
      ' at ', fmtTime(p.shown, p.tz), ` (${p.tz})`),
    body);
  close.focus();
  const params = new URLSearchParams({ time: p.start, to: p.end });
  for (const [t, values] of Object.entries(p.tags)) for (const v of values) params.append(`tag.${t}`, v);
  let trace;
  try {
    trace = await api(`/v1/streams/${encodeURIComponent(p.stream)}/provenance?${params}`);
  } catch (x) {
    clear(body, h('p.error', { role: 'alert' }, problemText(x)));
    return;
  }
  const records = await Promise.all(trace.ingests.map((i) => api(`/v1/ingests/${i.id}`).catch(() => null)));
  clear(body,
    h('p.muted', {}, p.level === 'raw' ? 'Readings aggregated in this point: ' : `A point served by the ${p.level} rollup level; the readings it aggregates: `,
      `${fmtTime(trace.range.from, p.tz)} → ${fmtTime(trace.range.to, p.tz)}`,
      Object.keys(trace.tags).length ? ` · ${Object.entries(trace.tags).map(([k, v]) => `${k}=${v.join('|')}`).join(', ')}` : ''),
    h('p', {}, `${trace.ingests.length} ingest${trace.ingests.length === 1 ? '' : 's'}${trace.truncated ? ' (first 1,000)' : ''}:`),
    h('ol.ingests', {}, trace.ingests.map((i, k) => ingestCard(i, records[k]))),
    trace.retracted.length ? [h('h3', {}, 'Retracted ingests over this range'), h('ul', {}, trace.retracted.map((r) =>
      h('li', {}, `#${r.id} ${r.filename ?? ''}: ${r.retraction?.reason ?? ''}`)))] : null);
}

function ingestCard(i, rec) {
  const prov = i.provenance ?? {};
  const check = h('span.hashcheck', { 'aria-live': 'polite' });
  return h('li.card', { dataset: { ingest: i.id } },
    h('h3', {}, `Ingest #${i.id}`, h('span.muted', {}, ` · ${fmtNum(i.rows_matched)} of its ${fmtNum(i.rows)} rows here`)),
    h('dl', {},
      h('dt', {}, 'File'), h('dd', {}, i.filename ?? '(no name given)'),
      h('dt', {}, 'SHA-256'), h('dd', {}, h('code.sha', {}, i.sha256 ?? '—'), i.sha256 ? copyButton(i.sha256) : null),
      h('dt', {}, 'Instrument'), h('dd', {}, i.instrument ?? prov.instrument ?? '—'),
      h('dt', {}, 'Operator'), h('dd', {}, prov.operator ?? '—'),
      h('dt', {}, 'Uploaded'), h('dd', {}, `${fmtTime(i.received_at)} with key #${i.key_id ?? '—'}${rec?.key ? ` (${rec.key.name})` : ''}`),
      h('dt', {}, 'Status'), h('dd', {}, i.status)),
    rec ? [
      jsonBlock('Attributes (file metadata and provenance)', { file: rec.file_metadata ?? null, provenance: rec.provenance ?? null }),
      jsonBlock('Mapping used', rec.mapping),
      Array.isArray(rec.warnings) && rec.warnings.length ? h('details', { open: true }, h('summary', {}, `Warnings (${rec.warnings.length})`),
        h('ul', {}, rec.warnings.map((w) => h('li', {}, typeof w === 'string' ? w : JSON.stringify(w))))) : h('p.muted', {}, 'Warnings: none'),
      h('details', {}, h('summary', {}, `Audit entries (${rec.audit?.length ?? 0})`), h('ul.audit', {}, (rec.audit ?? []).map((a) =>
        h('li', {}, `#${a.seq} ${fmtTime(a.at)} ${a.action} ${a.subject}`, h('br'), h('code.sha', {}, a.hash))))),
    ] : null,
    h('div.row', {},
      i.links.original && can('originals:read') ? h('button', { type: 'button', onclick: () => downloadOriginal(i, check) }, 'Download original') : null,
      can('provenance:read') ? h('button', { type: 'button', onclick: () => downloadProv(i) }, 'PROV-JSON') : null,
      check));
}

async function downloadOriginal(i, check) {
  check.textContent = 'Downloading…';
  try {
    const res = await apiRaw(i.links.original);
    // The browser keeps a large blob on disk; it is hashed a slice at a time.
    const blob = await res.blob();
    const got = await sha256OfBlob(blob);
    check.textContent = got === i.sha256 ? '✓ SHA-256 matches the record' : `✗ SHA-256 ${got} differs from the record`;
    check.className = got === i.sha256 ? 'hashcheck ok' : 'hashcheck error';
    downloadBlob(blob, i.filename ?? `ingest-${i.id}`);
  } catch (x) {
    check.textContent = problemText(x);
    check.className = 'hashcheck error';
  }
}

async function downloadProv(i) {
  const res = await apiRaw(i.links.prov);
  downloadBlob(await res.blob(), `ingest-${i.id}.prov.json`);
}

