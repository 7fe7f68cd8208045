// Where a CSV's table starts and how it is delimited. Instruments often write a block of
// preamble lines before the header ("# Instrument: X", "Serial,1234"); these are told apart
// from the table by their field count: the table is the run of lines with the same number of
// fields (≥ 2) that reaches the end of the sample, and its first line is the header. What the
// preamble says is kept as key/value attributes. ?skip_rows=N skips N lines instead of detecting.
import { AppError } from '../../../errors/index.ts';

/** Bytes looked at to find the delimiter and the preamble. */
export const SAMPLE_BYTES = 256 * 1024;

export interface Layout {
  delimiter: number;
  /** Byte offset of the header line. */
  headerOffset: number;
  /** 1-based line number of the header. */
  headerLine: number;
  /** Key/value pairs from the preamble, and preamble lines that are not pairs. */
  preamble: { attributes: Record<string, string>; lines: string[] } | null;
  /** ',' is a decimal separator (a ';'-delimited file). */
  decimalComma: boolean;
}

const CANDIDATES = [0x2c, 0x3b, 0x09]; // , ; tab

interface Line { start: number; end: number; text: string }

function splitLines(text: string, base: number): Line[] {
  const out: Line[] = [];
  let at = 0;
  let byte = base;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    const complete = nl >= 0;
    if (!complete) nl = text.length;
    const raw = text.slice(at, nl);
    const len = Buffer.byteLength(raw, 'utf8') + (complete ? 1 : 0);
    if (complete || out.length === 0) out.push({ start: byte, end: byte + len, text: raw.replace(/\r$/, '') });
    byte += len;
    at = nl + 1;
  }
  return out;
}

/** Fields of a line by a delimiter, honouring quotes (a quote left open counts as -1). */
function fieldCount(line: string, delim: string): number {
  let n = 1;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if (c === delim && !quoted) n++;
  }
  return quoted ? -1 : n;
}

/** "key: value", "key = value", or "key<delimiter>value…" (any of , ; tab), from a preamble line. */
function pair(line: string, delim: string): [string, string] | null {
  const body = line.replace(/^\s*#+\s*/, '');
  const m = /^([^:=,;\t]{1,200}?)\s*[:=]\s*(.*)$/.exec(body);
  if (m) return [m[1].trim(), m[2].trim().replace(/^"(.*)"$/, '$1')];
  for (const d of [delim, ',', ';', '\t']) {
    const parts = body.split(d).map((p) => p.trim().replace(/^"(.*)"$/, '$1'));
    if (parts.length >= 2 && parts[0] !== '') return [parts[0].replace(/[:=]$/, '').trim(), parts.slice(1).filter((p) => p !== '').join(', ')];
  }
  return null;
}

function describePreamble(lines: Line[], delim: string): Layout['preamble'] {
  if (lines.length === 0) return null;
  const attributes: Record<string, string> = {};
  const rest: string[] = [];
  for (const l of lines) {
    if (l.text.trim() === '' || /^\s*#+\s*$/.test(l.text)) continue;
    const kv = pair(l.text, delim);
    if (kv && !(kv[0] in attributes)) attributes[kv[0]] = kv[1];
    else rest.push(l.text.slice(0, 1000));
  }
  return { attributes, lines: rest.slice(0, 200) };
}

/**
 * Finds the delimiter and the header in the sample (the file's first bytes, BOM removed; `base`
 * is the BOM's length). `delimiter` is fixed for TSV; `skipRows` skips lines instead of detecting.
 */
export function findLayout(sample: Buffer, base: number, complete: boolean, opts: { delimiter?: number; skipRows?: number }): Layout {
  // A sample cut inside a multi-byte character: drop the partial line at its end.
  const lines = splitLines(sample.toString('utf8'), base);
  if (!complete && lines.length > 1) lines.pop();
  if (lines.length === 0 || lines.every((l) => l.text.trim() === '')) {
    throw new AppError(400, 'empty_body', 'the CSV has no header line');
  }
  let first = 0;
  if (opts.skipRows !== undefined) {
    if (opts.skipRows >= lines.length) {
      throw new AppError(422, 'malformed_csv', `skip_rows=${opts.skipRows} skips past the first ${lines.length} lines the sample holds`);
    }
    first = opts.skipRows;
  }
  const delims = opts.delimiter !== undefined ? [opts.delimiter] : CANDIDATES;
  let best: { delim: number; header: number; width: number; score: number } | null = null;
  for (const d of delims) {
    const ch = String.fromCharCode(d);
    const counts = lines.map((l, i) => (i < first || l.text.trim() === '' ? 0 : fieldCount(l.text, ch)));
    // The table's width is the most common field count (≥ 2) of the sample; its header is the
    // first line of that width.
    const freq = new Map<number, number>();
    for (const c of counts) if (c >= 2) freq.set(c, (freq.get(c) ?? 0) + 1);
    let width = 0;
    let score = 0;
    for (const [w, f] of freq) if (f > score || (f === score && w > width)) { width = w; score = f; }
    if (width < 2) continue;
    let header = opts.skipRows !== undefined ? first : counts.indexOf(width);
    if (opts.skipRows === undefined) {
      // "# comment" lines of the table's width still belong to the preamble.
      while (header < lines.length - 1 && lines[header].text.trimStart().startsWith('#')) header++;
    }
    if (!best || score > best.score || (score === best.score && width > best.width)) best = { delim: d, header, width, score };
  }
  if (!best) {
    if (opts.delimiter === undefined) {
      // One column only: the delimiter does not matter.
      best = { delim: 0x2c, header: first, width: 1, score: 0 };
    } else {
      throw new AppError(422, 'malformed_csv', 'cannot find a table: no two lines have the same number of tab-separated fields');
    }
  }
  const delim = String.fromCharCode(best.delim);
  const header = best.header;
  const pre = lines.slice(0, header);
  return {
    delimiter: best.delim,
    headerOffset: lines[header].start,
    headerLine: header + 1,
    preamble: describePreamble(pre, delim),
    decimalComma: best.delim === 0x3b,
  };
}
