// The chart: fields, a time range (presets or custom), a time zone, tag filters or one line per
// tag value. Every view is one query, resolution=auto&max_points=<plot width in pixels>&agg=min,max,avg,
// drawn as the average line inside its min/max band, so a spike narrower than a pixel still shows.
// Drag to zoom (a new query for the narrower range), buttons and arrow keys to pan, double-click
// to go back to the range chosen. The URL holds the view. Clicking a point opens its trace.
import uPlot from './uplot.esm.js';
import { apiRaw, api, can } from './api.js';
import { h, field, fmtTime, downloadBlob, problemText } from './dom.js';
import { route, setState } from './router.js';
import { isoToUs, usToIso, intervalUs, PRESETS } from './time.js';
import { openTrace } from './trace.js';

const COLORS = ['#1f5fbf', '#c0392b', '#1e8449', '#8e44ad', '#b9770e', '#117a8b', '#6c3483', '#a04000', '#2e4053', '#d35400'];
// Fixed padding (uPlot otherwise sizes it from the tick labels), so that the drawing area's width —
// the query's max_points — is known before the data is.
const PADDING = [12, 24, 0, 8];
const NUMERIC = new Set(['float8', 'float4', 'int2', 'int4', 'int8']);

function zones() {
  try { return Intl.supportedValuesOf('timeZone'); } catch { return ['UTC']; }
}

export async function chartPage(root, params, current) {
  const { streams } = await api('/v1/streams');
  if (!current()) return;
  root.append(h('h1', {}, 'Chart'));
  if (streams.length === 0) {
    root.append(h('p', {}, 'No streams yet.'));
    return;
  }
  const name = params.get('stream') && streams.some((s) => s.name === params.get('stream')) ? params.get('stream') : streams[0].name;
  const stream = streams.find((s) => s.name === name);
  const activity = await api(`/v1/streams/${encodeURIComponent(name)}/activity`).catch(() => null);
  const numeric = stream.fields.filter((f) => NUMERIC.has(f.type));
  const st = {
    stream: name,
    fields: (params.get('fields') ?? '').split(',').filter((f) => numeric.some((x) => x.name === f)),
    range: params.get('range') ?? '1d',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
    tz: params.get('tz') ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC',
    group: params.get('group') ?? '',
    tags: Object.fromEntries(stream.tags.map((t) => [t.name, params.getAll(`tag.${t.name}`).join(',')])),
  };
  if (st.fields.length === 0 && numeric.length) st.fields = [numeric[0].name];
  // Presets end at the stream's newest reading (lab data is often not live), else now.
  const anchorMs = activity?.time_max ? Math.ceil((Date.parse(activity.time_max) + 1) / 60000) * 60000 : Date.now();

  const saveState = () => {
    const p = new URLSearchParams();
    p.set('stream', st.stream);
    if (st.fields.length) p.set('fields', st.fields.join(','));
    p.set('range', st.range);
    if (st.range === 'custom') { p.set('from', st.from); p.set('to', st.to); }
    if (home.range !== 'custom' && home.range !== st.range) p.set('home', home.range);
    p.set('tz', st.tz);
    if (st.group) p.set('group', st.group);
    for (const [t, v] of Object.entries(st.tags)) for (const x of v.split(',').map((s) => s.trim()).filter(Boolean)) p.append(`tag.${t}`, x);
    setState('chart', p);
  };
  const presetRange = () => {
    const secs = PRESETS.find(([k]) => k === st.range)?.[1] ?? 86400;
    return [new Date(anchorMs - secs * 1000).toISOString(), new Date(anchorMs).toISOString()];
  };
  const viewRange = () => (st.range === 'custom' && st.from && st.to ? [st.from, st.to] : presetRange());
  // Where double-click goes back to: the range chosen before zooming (kept in the URL as `home`).
  const homePreset = PRESETS.some(([k]) => k === params.get('home')) ? params.get('home') : null;
  const home = homePreset ? { range: homePreset, from: '', to: '' } : { range: st.range, from: st.from, to: st.to };

  // Controls
  const streamSel = h('select', { onchange: () => { location.hash = `#/chart?stream=${encodeURIComponent(streamSel.value)}`; } },
    streams.map((s) => h('option', { value: s.name, selected: s.name === name }, s.name)));
  const fieldBoxes = h('fieldset.fields', {}, h('legend', {}, 'Fields'), numeric.length === 0 ? h('p.muted', {}, 'No numeric fields.') : null,
    numeric.map((f) => {
      const id = `fld-${f.column}`;
      return h('span.check', {}, h('input', { type: 'checkbox', id, value: f.name, checked: st.fields.includes(f.name),
        onchange: () => { st.fields = numeric.filter((x) => fieldBoxes.querySelector(`#fld-${CSS.escape(x.column)}`).checked).map((x) => x.name); changed(); } }),
      h('label', { for: id }, f.name, f.unit ? ` [${f.unit}]` : ''));
    }));
  const rangeSel = h('select', { onchange: () => { st.range = rangeSel.value; if (st.range === 'custom') { [st.from, st.to] = [fromIn.value || presetRange()[0], toIn.value || presetRange()[1]]; } home.range = st.range; home.from = st.from; home.to = st.to; syncCustom(); changed(); } },
    PRESETS.map(([k]) => h('option', { value: k, selected: st.range === k }, `Last ${k} of data`)),
    h('option', { value: 'custom', selected: st.range === 'custom' }, 'Custom range'));
  const fromIn = h('input', { type: 'text', value: st.from, placeholder: '2024-03-01T00:00:00Z', spellcheck: 'false' });
  const toIn = h('input', { type: 'text', value: st.to, placeholder: '2024-03-02T00:00:00Z', spellcheck: 'false' });
  const custom = h('div.row.custom', {}, field('From (RFC 3339)', fromIn), field('To (RFC 3339, exclusive)', toIn),
    h('button', { type: 'button', onclick: () => { st.range = 'custom'; st.from = fromIn.value.trim(); st.to = toIn.value.trim(); home.range = 'custom'; home.from = st.from; home.to = st.to; changed(); } }, 'Apply'));
  const syncCustom = () => { custom.hidden = st.range !== 'custom'; const [f, t] = viewRange(); fromIn.value = f; toIn.value = t; };
  const tzIn = h('input', { type: 'text', value: st.tz, list: 'tz-list', spellcheck: 'false',
    onchange: () => { if (zones().includes(tzIn.value) || tzIn.value === 'UTC') { st.tz = tzIn.value; changed(true); } else tzIn.setCustomValidity('not an IANA time zone'); tzIn.reportValidity(); } });
  tzIn.addEventListener('input', () => tzIn.setCustomValidity(''));
  const tzList = h('datalist', { id: 'tz-list' }, zones().map((z) => h('option', { value: z })));
  const groupSel = h('select', { onchange: () => { st.group = groupSel.value; changed(); } }, h('option', { value: '' }, 'one line per field'),
    stream.tags.map((t) => h('option', { value: t.name, selected: st.group === t.name }, `one line per ${t.name}`)));
  const tagInputs = stream.tags.map((t) => {
    const input = h('input', { type: 'text', value: st.tags[t.name], placeholder: 'any', spellcheck: 'false',
      onchange: () => { st.tags[t.name] = input.value; changed(); } });
    return field(`${t.name} =`, input, 'values, comma-separated');
  });

  const info = h('p.info', { 'aria-live': 'polite' });
  const plotBox = h('div.plot', { tabindex: 0, role: 'img', 'aria-label': 'Chart. Drag to zoom; arrow keys pan; + and - zoom; Home goes back; comma and period move the cursor, Enter traces the point.' });
  const tracePanel = h('aside.trace', { hidden: true, 'aria-label': 'Trace of a point' });
  const buttons = h('div.row.tools', {},
    h('button', { type: 'button', onclick: () => pan(-0.5), title: 'Arrow left' }, '◀ Earlier'),
    h('button', { type: 'button', onclick: () => zoomBy(2), title: '-' }, 'Zoom out'),
    h('button', { type: 'button', onclick: () => reset(), title: 'Home or double-click' }, 'Reset zoom'),
    h('button', { type: 'button', onclick: () => pan(0.5), title: 'Arrow right' }, 'Later ▶'),
    h('span.spacer'),
    h('button', { type: 'button', onclick: () => download('csv') }, 'Download CSV'),
    h('button', { type: 'button', onclick: () => download('arrow') }, 'Download Arrow'));

  root.append(
    h('form.controls', { onsubmit: (e) => e.preventDefault() },
      h('div.row', {}, field('Stream', streamSel), field('Time range', rangeSel), field('Time zone', tzIn), tzList, field('Lines', groupSel), ...tagInputs),
      custom, fieldBoxes),
    buttons, info,
    h('div.chartarea', {}, plotBox, tracePanel));
  syncCustom();

  let plot = null;
  let shape = '';
  let last = null;
  let draws = 0;
  let dragged = false;
  let curX = [0, 1];

  function queryUrl(format, maxPoints) {
    const [from, to] = viewRange();
    const p = new URLSearchParams({ from, to, resolution: 'auto', max_points: String(maxPoints), fields: st.fields.join(','), agg: 'min,max,avg', tz: st.tz });
    if (st.group) p.set('group_by', st.group);
    for (const [t, v] of Object.entries(st.tags)) for (const x of v.split(',').map((s) => s.trim()).filter(Boolean)) p.append(`tag.${t}`, x);
    if (format) p.set('format', format);
    return `/v1/streams/${encodeURIComponent(st.stream)}/query?${p}`;
  }

  function plotWidth() {
    if (plot) return Math.max(2, Math.round(plot.bbox.width / devicePixelRatio));
    // Before the first draw: an empty plot with the same axes says how wide the drawing area is.
    const axes = Math.min(2, new Set(st.fields.map((f) => unitOf(f) || f)).size);
    const probe = new uPlot({
      width: plotBox.clientWidth - 8, height: 100, scales: { x: { time: true } }, padding: PADDING,
      series: [{}, ...Array.from({ length: axes }, (_, i) => ({ scale: `u${i}` }))],
      axes: [{ label: 'x' }, ...Array.from({ length: axes }, (_, i) => ({ scale: `u${i}`, side: i === 0 ? 3 : 1, size: 70, label: 'y' }))],
    }, [[], ...Array.from({ length: axes }, () => [])], h('div'));
    const w = Math.round(probe.bbox.width / devicePixelRatio);
    probe.destroy();
    return Math.max(2, w);
  }
  const unitOf = (f) => stream.fields.find((x) => x.name === f)?.unit ?? '';

  async function load() {
    if (st.fields.length === 0) { info.textContent = 'Pick a field.'; return; }
    const url = queryUrl(null, plotWidth());
    const n = ++load.seq;
    info.textContent = 'Loading…';
    let res;
    let body;
    try {
      res = await apiRaw(url);
      body = await res.json();
    } catch (x) {
      if (n === load.seq) info.textContent = `Query refused: ${problemText(x)}`;
      return;
    }
    if (n !== load.seq || !current()) return;
    last = { url, body, servedBy: res.headers.get('strata-served-by') ?? '' };
    draw(body);
    const [from, to] = viewRange();
    info.replaceChildren(
      `${fmtTime(from, st.tz)} → ${fmtTime(to, st.tz)} (${st.tz}) · ${body.buckets} buckets of ${humanBucket(body.bucket)} · `,
      h('strong', {}, 'level ', h('span', { dataset: { level: body.level } }, body.level)),
      ` · served by ${last.servedBy || '—'}`, body.rows.length === 0 ? ' · no readings in this range' : '');
  }
  load.seq = 0;

  function draw(body) {
    const col = new Map(body.columns.map((c, i) => [c.name, i]));
    const gi = st.group ? col.get(st.group) : undefined;
    const times = [...new Set(body.rows.map((r) => r[0]))].sort();
    const xi = new Map(times.map((t, i) => [t, i]));
    const groups = gi === undefined ? [null] : [...new Set(body.rows.map((r) => r[gi]))].sort();
    const series = [];
    for (const g of groups) for (const f of st.fields) series.push({ g, f });
    const data = [Float64Array.from(times, (t) => Number(isoToUs(t)) / 1e6)];
    const num = (v) => (v === null || v === undefined ? null : typeof v === 'string' ? Number(v) : v);
    for (const s of series) {
      // Buckets this line has no row for stay undefined (drawn across: another line's bucket);
      // a stretch longer than three of the line's usual steps is a gap (null: not drawn across).
      const arrs = ['avg', 'min', 'max'].map(() => new Array(times.length).fill(undefined));
      const [ia, imin, imax] = ['avg', 'min', 'max'].map((a) => col.get(`${s.f}_${a}`));
      const present = [];
      for (const r of body.rows) {
        if (gi !== undefined && r[gi] !== s.g) continue;
        const k = xi.get(r[0]);
        arrs[0][k] = num(r[ia]); arrs[1][k] = num(r[imin]); arrs[2][k] = num(r[imax]);
        present.push(k);
      }
      present.sort((a, b) => a - b);
      const steps = present.slice(1).map((k, i) => data[0][k] - data[0][present[i]]).sort((a, b) => a - b);
      const usual = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
      for (let i = 1; i < present.length; i++) {
        const a = present[i - 1];
        if (present[i] - a > 1 && data[0][present[i]] - data[0][a] > 3 * usual) for (const arr of arrs) arr[a + 1] = null;
      }
      data.push(...arrs);
    }
    const newShape = JSON.stringify([series, st.tz]);
    const [from, to] = viewRange();
    const xRange = [Date.parse(from) / 1000, Date.parse(to) / 1000];
    curX = xRange;
    if (plot && shape === newShape) {
      plot.setData(data);
      return;
    }
    shape = newShape;
    plot?.destroy();
    // One scale per unit; a field without a unit has a scale of its own.
    const scaleKey = (f) => (unitOf(f) ? `unit:${unitOf(f)}` : `field:${f}`);
    const scales = [...new Set(st.fields.map(scaleKey))];
    const scaleOf = (f) => `u${scales.indexOf(scaleKey(f))}`;
    const opts = {
      width: plotBox.clientWidth - 8,
      padding: PADDING,
      height: Math.max(240, Math.min(420, window.innerHeight - 360)),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), st.tz),
      scales: { x: { time: true, range: () => curX } },
      cursor: { drag: { x: true, y: false, setScale: false }, bind: { dblclick: () => () => null } },
      legend: { live: true },
      series: [{ label: 'Time', value: (u, v) => (v === null || v === undefined ? '—' : fullTime(v, st.tz)) }, ...series.flatMap((s, i) => {
        const color = COLORS[i % COLORS.length];
        const label = `${s.f}${s.g !== null ? ` ${st.group}=${s.g}` : ''}`;
        const unit = unitOf(s.f);
        const fmt = (u, v) => (v === null ? '—' : `${+v.toPrecision(6)}${unit ? ` ${unit}` : ''}`);
        return [
          { label, stroke: color, width: 1.5, scale: scaleOf(s.f), value: fmt },
          { label: `${label} min`, stroke: `${color}66`, width: 1, scale: scaleOf(s.f), value: fmt },
          { label: `${label} max`, stroke: `${color}66`, width: 1, scale: scaleOf(s.f), value: fmt },
        ];
      })],
      bands: series.map((s, i) => ({ series: [3 + i * 3, 2 + i * 3], fill: `${COLORS[i % COLORS.length]}26` })),
      axes: [
        { label: `Time (${st.tz})`, stroke: '#222', grid: { stroke: '#e3e3e3' }, values: (u, splits, ax, space, incr) => timeLabels(splits, incr, st.tz) },
        ...scales.slice(0, 2).map((key, i) => {
          const fields = st.fields.filter((f) => scaleKey(f) === key);
          const u = unitOf(fields[0]);
          return { scale: `u${i}`, side: i === 0 ? 3 : 1, stroke: '#222', grid: { show: i === 0, stroke: '#e3e3e3' },
            label: `${fields.join(', ')}${u ? ` [${u}]` : ''}`, size: 70 };
        }),
      ],
      hooks: {
        setSelect: [(u) => {
          if (u.select.width >= 3) {
            dragged = true;
            const a = u.posToVal(u.select.left, 'x');
            const b = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            zoomTo(a, b);
          }
        }],
        draw: [() => { plotBox.dataset.draws = String(++draws); }],
      },
    };
    plot = new uPlot(opts, data, plotBox);
    plotBox.uplot = plot; // for the browser tests: positions of values on the canvas
    // The legend names each line once: its min and max series are drawn as its band.
    plot.root.querySelectorAll('.u-legend .u-series').forEach((el, i) => { if (i > 0 && (i - 1) % 3 !== 0) el.hidden = true; });
    plot.over.addEventListener('mousedown', () => { dragged = false; });
    plot.over.addEventListener('click', () => { if (!dragged) traceAt(plot.cursor.idx, plot.cursor.top); });
    plot.over.addEventListener('dblclick', () => reset());
  }

  // The finest rollup level's interval, in seconds: edges of wide views are put on its grid, where
  // the levels serve whole buckets (an edge inside a bucket is read from the raw rows).
  const finestS = Math.min(...(Array.isArray(stream.rollups) ? stream.rollups : [])
    .map((l) => intervalUs(typeof l === 'string' ? l : l?.name ?? l?.interval)).filter((x) => x !== null).map((x) => Number(x) / 1e6));

  function zoomTo(a, b) {
    if (!(b > a)) return;
    const minSpan = 0.002;
    if (b - a < minSpan) b = a + minSpan;
    if (Number.isFinite(finestS) && b - a > 200 * finestS) {
      a = Math.floor(a / finestS) * finestS;
      b = Math.ceil(b / finestS) * finestS;
    }
    st.range = 'custom';
    st.from = new Date(Math.floor(a * 1000)).toISOString();
    st.to = new Date(Math.ceil(b * 1000)).toISOString();
    rangeSel.value = 'custom';
    syncCustom();
    changed();
  }
  function pan(frac) {
    const [f, t] = viewRange().map((x) => Date.parse(x) / 1000);
    const d = (t - f) * frac;
    zoomTo(f + d, t + d);
  }
  function zoomBy(k) {
    const [f, t] = viewRange().map((x) => Date.parse(x) / 1000);
    const mid = (f + t) / 2;
    const half = ((t - f) * k) / 2;
    zoomTo(mid - half, mid + half);
  }
  function reset() {
    st.range = home.range; st.from = home.from; st.to = home.to;
    rangeSel.value = st.range;
    syncCustom();
    changed();
  }

  /** The bucket [start, end) behind point idx; for a level-served view, the level's buckets it holds. */
  function bucketOf(idx) {
    const body = last.body;
    const times = [...new Set(body.rows.map((r) => r[0]))].sort();
    const startIso = times[idx];
    const [from, to] = viewRange().map((x) => isoToUs(new Date(x).toISOString()));
    const n = BigInt(body.buckets);
    const w = (to - from) / n;
    const start = isoToUs(startIso);
    const k = (start - from) / w;
    let a = start;
    let b = k >= n - 1n ? to : start + w;
    const L = body.level !== 'raw' ? intervalUs(body.level) : null;
    if (L) {
      const ceil = (x) => ((x + L - 1n) / L) * L;
      a = ceil(a); b = ceil(b);
    }
    return { start: usToIso(a), end: usToIso(b), shown: startIso };
  }

  function traceAt(idx, top) {
    if (idx === null || idx === undefined || !plot || !last) return;
    if (!can('provenance:read')) {
      info.textContent = 'Tracing a point to its files needs an admin or auditor key.';
      return;
    }
    // The line nearest the pointer.
    let best = null;
    const groups = [];
    const seen = JSON.parse(shape)[0];
    seen.forEach((s, i) => {
      const si = 1 + i * 3;
      const v = plot.data[si][idx];
      if (v === null || v === undefined || !plot.series[si].show) return;
      const d = top === undefined || top === null ? 0 : Math.abs(plot.valToPos(v, plot.series[si].scale) - top);
      if (!best || d < best.d) best = { d, s, v };
      groups.push(s);
    });
    if (!best) return;
    const tags = Object.fromEntries(Object.entries(st.tags).map(([t, v]) => [t, v.split(',').map((x) => x.trim()).filter(Boolean)]).filter(([, v]) => v.length));
    if (st.group && best.s.g !== null) tags[st.group] = [best.s.g];
    const bucket = bucketOf(idx);
    openTrace(tracePanel, { stream: st.stream, ...bucket, field: best.s.f, value: best.v, unit: unitOf(best.s.f), tags, tz: st.tz, level: last.body.level });
  }

  plotBox.addEventListener('keydown', (e) => {
    const keys = { ArrowLeft: () => pan(-0.25), ArrowRight: () => pan(0.25), '+': () => zoomBy(0.5), '=': () => zoomBy(0.5), '-': () => zoomBy(2), Home: () => reset() };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); return; }
    if ((e.key === ',' || e.key === '.') && plot) {
      e.preventDefault();
      const n = plot.data[0].length;
      const i = Math.min(n - 1, Math.max(0, (plot.cursor.idx ?? -1) + (e.key === '.' ? 1 : -1)));
      plot.setCursor({ left: plot.valToPos(plot.data[0][i], 'x'), top: plot.cursor.top ?? 10 });
    }
    if (e.key === 'Enter' && plot) { e.preventDefault(); traceAt(plot.cursor.idx, plot.cursor.top); }
  });

  async function download(format) {
    try {
      // Exactly the view shown: the last query, in another format.
      const u = last ? new URL(last.url, location.origin) : new URL(queryUrl(null, plotWidth()), location.origin);
      u.searchParams.set('format', format);
      const res = await apiRaw(`${u.pathname}${u.search}`);
      const [from, to] = viewRange();
      downloadBlob(await res.blob(), `${st.stream}_${from}_${to}.${format === 'csv' ? 'csv' : 'arrows'}`.replace(/[:]/g, ''));
    } catch (x) {
      info.textContent = `Download refused: ${problemText(x)}`;
    }
  }

  function changed(redraw) {
    saveState();
    if (redraw) shape = '';
    load();
  }

  // The plot follows its box (the window, the trace panel opening and closing).
  const resizer = new ResizeObserver(() => {
    if (plot && route().path === 'chart' && Math.abs(plot.width - (plotBox.clientWidth - 8)) > 1) plot.setSize({ width: plotBox.clientWidth - 8, height: plot.height });
  });
  resizer.observe(plotBox);
  window.addEventListener('hashchange', () => resizer.disconnect(), { once: true });
  saveState();
  await load();
}

/** "3114186 microseconds" → "3.11 s". */
function humanBucket(text) {
  const m = /^(\d+(?:\.\d+)?) (microseconds|milliseconds|seconds|minutes|hours|days)$/.exec(text ?? '');
  if (!m) return text;
  const s = Number(m[1]) * { microseconds: 1e-6, milliseconds: 1e-3, seconds: 1, minutes: 60, hours: 3600, days: 86400 }[m[2]];
  if (s < 1) return `${+(s * 1000).toPrecision(3)} ms`;
  if (s < 120) return `${+s.toPrecision(3)} s`;
  if (s < 7200) return `${+(s / 60).toPrecision(3)} min`;
  if (s < 172800) return `${+(s / 3600).toPrecision(3)} h`;
  return `${+(s / 86400).toPrecision(3)} d`;
}

/** An instant in the chosen zone, to the second (the legend). */
function fullTime(v, tz) {
  return new Date(v * 1000).toLocaleString('sv-SE', { timeZone: tz, hour12: false });
}

/** Axis labels in the chosen zone, 24-hour clock, as precise as the tick spacing needs. */
function timeLabels(splits, incr, tz) {
  const parts = (v) => Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(v * 1000)).map((p) => [p.type, p.value]));
  let prevDay = '';
  return splits.map((v) => {
    const p = parts(v);
    const day = `${p.year}-${p.month}-${p.day}`;
    const first = day !== prevDay;
    prevDay = day;
    if (incr >= 86400) return day;
    const clock = incr < 60 ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`;
    return first ? `${clock}\n${day}` : clock;
  });
}
