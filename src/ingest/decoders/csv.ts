// CSV and TSV uploads (Content-Type text/csv, text/tab-separated-values). The body is spooled to
// a temp file and read twice, block by block: the first pass finds the layout (delimiter,
// preamble, header) and infers each column's type over the whole file (csv/infer.ts), the second
// decodes the rows into batches for the COPY path. Columns the stream already has are read as
// the stream's type. Memory is bounded by a read block and one batch, whatever the file's size.
import { type FileHandle, open } from 'node:fs/promises';
import type { ColumnBatch, ColumnData, StreamColumn } from '../../domain/types.ts';
import { AppError } from '../../errors/index.ts';
import type { IngestBody } from '../body.ts';
import { type SpooledFile, spoolToFile } from '../spool.ts';
import type { DecodedSchema, Decoder, SourceColumn } from './decoder.ts';
import { type DecoderOptions, registerDecoder } from './index.ts';
import { type Layout, SAMPLE_BYTES, findLayout } from './csv/layout.ts';
import { type RecordBlock, fieldText, readRecords } from './csv/records.ts';
import { type ColumnPlan, type TimePlan, decodeBlock, inferColumns, planTime, type Inferred } from './csv/infer.ts';
import { type EpochUnit, parseEpochUnit } from './epoch-units.ts';

/** Rows per batch handed to the COPY writer. */
const BATCH_ROWS = 16_384;

function param(opts: DecoderOptions, name: string): string | undefined {
  const v = opts.params[name];
  return v === undefined || v === '' ? undefined : v;
}

function skipRowsOf(opts: DecoderOptions): number | undefined {
  const raw = param(opts, 'skip_rows');
  if (raw === undefined) return undefined;
  if (!/^\d{1,6}$/.test(raw)) throw new AppError(400, 'invalid_request', `skip_rows=${JSON.stringify(raw)} is not a number of lines (0–999999)`);
  return Number(raw);
}

function timeUnitOf(opts: DecoderOptions): EpochUnit | null {
  const raw = param(opts, 'time_unit');
  if (raw === undefined) return null;
  const unit = parseEpochUnit(raw);
  if (!unit) throw new AppError(400, 'invalid_request', `time_unit=${JSON.stringify(raw)} is not a unit; use s, ms, us or ns`);
  return unit;
}

async function readSample(fh: FileHandle, size: number): Promise<{ sample: Buffer; bom: number }> {
  const head = Buffer.alloc(Math.min(size, SAMPLE_BYTES + 3));
  await fh.read(head, 0, head.length, 0);
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new AppError(422, 'malformed_csv', 'the text is UTF-16; save the file as UTF-8 (Excel: "CSV UTF-8") and upload that');
  }
  const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  return { sample: head.subarray(bom), bom };
}

export class CsvDecoder implements Decoder {
  readonly format: 'csv' | 'tsv';
  private decoded!: DecodedSchema;
  private layout!: Layout;
  private inferred!: Inferred;
  private subMicro = 0;
  private fh: FileHandle | null = null;

  private constructor(format: 'csv' | 'tsv', private readonly file: SpooledFile, private readonly opts: DecoderOptions) {
    this.format = format;
  }

  static async open(format: 'csv' | 'tsv', body: IngestBody, opts: DecoderOptions): Promise<CsvDecoder> {
    const skipRows = skipRowsOf(opts);
    const timeUnit = timeUnitOf(opts);
    const file = await spoolToFile(body, opts.spoolDir, opts.identityEncoding);
    const d = new CsvDecoder(format, file, opts);
    try {
      if (file.size === 0) throw new AppError(400, 'empty_body', 'the body is empty: a CSV starts with its header line');
      d.fh = await open(file.path, 'r');
      const { sample, bom } = await readSample(d.fh, file.size);
      d.layout = findLayout(sample, bom, bom + sample.length >= file.size, { delimiter: format === 'tsv' ? 0x09 : undefined, skipRows });
      const known = new Map((opts.streamColumns ?? []).map((c) => [c.name, c]));
      d.inferred = await inferColumns(d.records(null), d.layout, known, {
        timeUnit, requestedTime: param(opts, 'time_column'), streamTime: opts.streamTimeColumn ?? null,
        tz: param(opts, 'tz') ?? null, window: opts.timeWindow,
      });
      d.decoded = d.describe(bom > 0);
      return d;
    } catch (err) {
      await d.close();
      throw err;
    }
  }

  private records(ncols: number | null): AsyncGenerator<RecordBlock> {
    const fh = this.fh as FileHandle;
    return readRecords(fh, this.file.size, this.layout.headerOffset, this.layout.headerLine, this.layout.delimiter, ncols, BATCH_ROWS);
  }

  private describe(bom: boolean): DecodedSchema {
    const inf = this.inferred;
    const columns: SourceColumn[] = inf.columns.filter((c) => c.type !== null).map((c) => ({
      name: c.name, sourceType: c.sourceType, type: c.type as SourceColumn['type'], role: c.type === 'text' ? 'tag' : 'field', unit: null,
    }));
    const l = this.layout;
    const metadata: Record<string, unknown> = {
      csv: {
        delimiter: String.fromCharCode(l.delimiter), header_line: l.headerLine, bom, decimal_comma: l.decimalComma, rows: inf.rows,
        columns: Object.fromEntries(inf.columns.map((c) => [c.name, c.sourceType])),
      },
    };
    if (l.preamble) {
      metadata.attributes = l.preamble.attributes;
      if (l.preamble.lines.length > 0) metadata.preamble_lines = l.preamble.lines;
    }
    return { columns, timeCandidates: inf.timeCandidates, metadata, warnings: inf.warnings, rejected: [] };
  }

  get schema(): DecodedSchema {
    return this.decoded;
  }

  get subMicrosecondCount(): number {
    return this.subMicro;
  }

  async *batches(timeColumn: string, bound: ReadonlyMap<string, StreamColumn>): AsyncGenerator<ColumnBatch> {
    const inf = this.inferred;
    const timeIndex = inf.columns.findIndex((c) => c.name === timeColumn);
    const timePlan: TimePlan = planTime(inf.columns[timeIndex], timeIndex, inf, { tz: param(this.opts, 'tz') ?? null, decimalComma: this.layout.decimalComma });
    const stats = (this.decoded.metadata.csv as Record<string, unknown>);
    stats.time = timePlan.describe;
    const plans: ColumnPlan[] = [];
    inf.columns.forEach((c, i) => {
      const target = bound.get(c.name);
      if (target && i !== timeIndex) plans.push({ index: i, name: c.name, target, nulls: 0, nans: 0 });
    });
    let header = true;
    for await (const block of this.records(inf.columns.length)) {
      const from = header ? 1 : 0;
      header = false;
      if (block.rows === from) continue;
      const out = decodeBlock(block, from, timePlan, plans, this.layout.decimalComma);
      this.subMicro += out.subMicro;
      const columns: ColumnData[] = out.columns;
      yield { length: out.length, time: out.time, minTime: out.minTime, maxTime: out.maxTime, columns };
    }
    stats.values = Object.fromEntries(plans.map((p) => [p.name, { nulls: p.nulls, nan: p.nans }]));
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = null;
    await this.file.remove();
  }
}

/** A header field's text (for the inference pass). */
export { fieldText };

registerDecoder('csv', (body, opts) => CsvDecoder.open('csv', body, opts));
registerDecoder('tsv', (body, opts) => CsvDecoder.open('tsv', body, opts));
