// Upload: drop files (or choose them) onto a stream; one progress bar per file (XHR upload
// progress); the answer (rows, time range, mapping, warnings) or the problem details of a refusal.
// The Idempotency-Key is the file's SHA-256, so the same file dropped twice is stored once.
import { api, upload, qs } from './api.js';
import { h, clear, field, fmtTime, fmtNum, jsonBlock } from './dom.js';
import { sha256OfBlob } from './sha256.js';

const TYPES = [
  ['', 'detect from the file'],
  ['application/vnd.apache.arrow.stream', 'Arrow IPC stream'],
  ['application/vnd.apache.arrow.file', 'Arrow IPC file / Feather'],
  ['application/vnd.apache.parquet', 'Parquet'],
  ['application/x-hdf5', 'HDF5'],
  ['application/x-netcdf', 'netCDF4'],
  ['text/csv', 'CSV'],
  ['text/tab-separated-values', 'TSV'],
];

/** The content type from the file's first bytes, else its extension. */
export async function detectType(file) {
  const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
  const text = String.fromCharCode(...head);
  if (text.startsWith('ARROW1')) return 'application/vnd.apache.arrow.file';
  if (text.startsWith('PAR1')) return 'application/vnd.apache.parquet';
  if (text.startsWith('\x89HDF')) return /\.(nc|nc4|cdf)$/i.test(file.name) ? 'application/x-netcdf' : 'application/x-hdf5';
  if (head[0] === 0xff && head[1] === 0xff && head[2] === 0xff && head[3] === 0xff) return 'application/vnd.apache.arrow.stream';
  if (/\.tsv$|\.tab$/i.test(file.name)) return 'text/tab-separated-values';
  if (/\.(arrows|arrow)$/i.test(file.name)) return 'application/vnd.apache.arrow.stream';
  if (/\.(h5|hdf5|he5)$/i.test(file.name)) return 'application/x-hdf5';
  if (/\.parquet$/i.test(file.name)) return 'application/vnd.apache.parquet';
  return 'text/csv';
}

export async function uploadPage(root, params) {
  root.append(h('h1', {}, 'Upload'));
  const { streams } = await api('/v1/streams');
  const stream = h('input', { type: 'text', list: 'stream-names', required: true, value: params.get('stream') ?? streams[0]?.name ?? '',
    pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]{0,127}', spellcheck: 'false' });
  const names = h('datalist', { id: 'stream-names' }, streams.map((s) => h('option', { value: s.name })));
  const type = h('select', {}, TYPES.map(([v, l]) => h('option', { value: v }, l)));
  const create = h('input', { type: 'checkbox', checked: true, id: 'create-stream' });
  const input = h('input', { type: 'file', multiple: true, id: 'upload-files' });
  const instrument = h('input', { type: 'text', maxlength: 256, spellcheck: 'false' });
  const operator = h('input', { type: 'text', maxlength: 256 });
  const results = h('ol.uploads', { 'aria-live': 'polite' });
  const drop = h('div.drop', { tabindex: 0, role: 'button', 'aria-label': 'Drop files here, or press Enter to choose files',
    onclick: () => input.click(),
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } },
    ondragover: (e) => { e.preventDefault(); drop.classList.add('over'); },
    ondragleave: () => drop.classList.remove('over'),
    ondrop: (e) => { e.preventDefault(); drop.classList.remove('over'); send([...e.dataTransfer.files]); },
  }, h('strong', {}, 'Drop files here'), h('span', {}, 'Arrow, Parquet, HDF5, netCDF4, CSV or TSV — or click to choose'));
  input.addEventListener('change', () => { send([...input.files]); input.value = ''; });
  root.append(h('form.controls', { onsubmit: (e) => e.preventDefault() },
    h('div.row', {}, field('Stream', stream, 'an existing stream, or a new name'), names, field('Format', type),
      field('Instrument (optional)', instrument), field('Operator (optional)', operator),
      h('span.check', {}, create, h('label', { for: 'create-stream' }, 'create the stream if it does not exist')),
      field('Files', input))),
  drop, results);

  /** Strata-Provenance: who and what made the files (recorded with each upload). */
  function provenance() {
    const p = {};
    if (instrument.value.trim()) p.instrument = instrument.value.trim();
    if (operator.value.trim()) p.operator = operator.value.trim();
    return Object.keys(p).length ? p : null;
  }

  async function send(files) {
    if (!stream.reportValidity()) return;
    for (const file of files) {
      const bar = h('progress', { max: 1, value: 0, 'aria-label': `upload of ${file.name}` });
      const out = h('div');
      const item = h('li.card', { dataset: { file: file.name } }, h('strong', {}, file.name), ` ${fmtNum(file.size)} bytes `, bar, out);
      results.append(item);
      const contentType = type.value || await detectType(file);
      const sha = await sha256OfBlob(file);
      const q = qs({ create: create.checked ? undefined : 'false' });
      const { status, body } = await upload(`/v1/streams/${encodeURIComponent(stream.value)}/ingest${q}`, file, {
        contentType, idempotencyKey: `sha256:${sha}`, provenance: provenance(), onProgress: (a, b) => { bar.value = a / b; },
      });
      bar.value = 1;
      item.dataset.status = String(status);
      if (status === 200 || status === 201) {
        const i = body.ingest;
        clear(out,
          h('p.ok', {}, body.duplicate ? `Already stored as ingest #${i.id} (same file): nothing stored again.` : `Stored as ingest #${i.id}.`),
          h('dl.compact', {},
            h('dt', {}, 'Rows'), h('dd', {}, fmtNum(i.rows)),
            h('dt', {}, 'Time range'), h('dd', {}, `${fmtTime(i.time_min)} → ${fmtTime(i.time_max)}`),
            h('dt', {}, 'SHA-256'), h('dd', {}, h('code.sha', {}, i.sha256))),
          jsonBlock('Mapping used', i.mapping),
          Array.isArray(i.warnings) && i.warnings.length ? h('ul.warn', {}, i.warnings.map((w) => h('li', {}, typeof w === 'string' ? w : JSON.stringify(w)))) : h('p.muted', {}, 'No warnings.'));
      } else {
        clear(out, h('p.error', { role: 'alert' }, `${status} ${body.code ?? ''}: ${body.detail ?? body.title ?? ''}`),
          jsonBlock('Problem details', body));
      }
    }
  }
}
