// Streams: each stream's description, tags, fields with units, rows, time range, last ingest,
// instruments that have gone silent, and rollup freshness (watermarks, pending invalidations).
import { api, can } from './api.js';
import { h, fmtNum, fmtTime, fmtAgo, table } from './dom.js';

export async function streamsPage(root) {
  root.append(h('h1', {}, 'Streams'));
  const { streams } = await api('/v1/streams');
  if (streams.length === 0) {
    root.append(h('p', {}, 'No streams yet. ', can('ingest') ? h('a', { href: '#/upload' }, 'Upload a file') : null,
      can('ingest') ? ' to create one.' : ''));
    return;
  }
  const activities = await Promise.all(streams.map((s) => api(`/v1/streams/${encodeURIComponent(s.name)}/activity`).catch(() => null)));
  const rows = streams.map((s, i) => {
    const a = activities[i];
    const silent = a?.instruments.filter((x) => x.silent) ?? [];
    const rollups = a?.rollups ?? [];
    return h('tr', { dataset: { stream: s.name } },
      h('th', { scope: 'row' }, can('query') ? h('a', { href: `#/chart?stream=${encodeURIComponent(s.name)}` }, s.name) : s.name,
        s.description ? h('div.muted', {}, s.description) : null),
      h('td', {}, s.tags.map((t) => h('span.chip', {}, t.name))),
      h('td', {}, s.fields.map((f) => h('span.chip', {}, f.name, f.unit ? h('span.unit', {}, ` [${f.unit}]`) : null))),
      h('td.num', {}, a ? fmtNum(a.rows) : '—'),
      h('td', {}, a?.time_min ? [fmtTime(a.time_min), h('br'), '→ ', fmtTime(a.time_max)] : '—'),
      h('td', {}, a?.last_ingest_at ? fmtTime(a.last_ingest_at) : '—',
        silent.map((x) => h('div.warn', { role: 'note' }, `⚠ ${x.instrument ?? 'unnamed instrument'} silent for ${fmtAgo(x.silent_seconds)} (usually every ${fmtAgo(x.usual_gap_seconds)})`))),
      h('td', {}, rollups.length === 0 ? h('span.muted', {}, 'no levels') : h('ul.plain', {}, rollups.map((r) =>
        h('li', {}, h('strong', {}, r.level), r.watermark ? `: built to ${fmtTime(r.watermark)}` : ': not built yet',
          r.invalidations ? h('span.warn', {}, ` · ${r.invalidations} pending invalidation${r.invalidations > 1 ? 's' : ''} (${fmtTime(r.invalidated_from)} – ${fmtTime(r.invalidated_to)})`) : null)))));
  });
  root.append(table(['Stream', 'Tags', 'Fields [unit]', 'Rows', 'Time range', 'Last ingest', 'Rollups (watermark)'], rows));
  root.append(h('p.muted', {}, 'Times in your browser\'s zone. Rows: committed uploads less retractions. An instrument is "silent" when its last upload is more than three of its usual gaps ago.'));
}
