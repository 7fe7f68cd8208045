// CSV and TSV uploads (Content-Type text/csv, text/tab-separated-values). The body is spooled to
// a temp file and read twice, block by block: the first pass finds the layout (delimiter,
// preamble, header) and infers each column's type over the whole file (csv/infer.ts), the second
// decodes the rows into batches for the COPY path. The second pass runs in a worker thread
// (csv/worker.ts), which transfers each batch's column arrays to this thread, at most READ_AHEAD
// batches ahead of the COPY: decoding overlaps with encoding and sending the COPY rows here.
// Columns the stream already has are read as the stream's type. Memory is bounded by a read
// block and a few batches, whatever the file's size.
import { type FileHandle, open } from 'node:fs/promises';
import type { ColumnBatch, ColumnData, StreamColumn } from '../../domain/types.ts';
import { AppError } from '../../errors/index.ts';
import type { IngestBody } from '../body.ts';
import { type SpooledFile, spoolToFile } from '../spool.ts';
import type { DecodedSchema, Decoder, SourceColumn } from './decoder.ts';
import { type DecoderOptions, registerDecoder } from './index.ts';
import { type Layout, SAMPLE_BYTES, findLayout } from './csv/layout.ts';
import { type RecordBlock, readRecords } from './csv/records.ts';
import { type TimePlan, inferColumns, planTime, type Inferred } from './csv/infer.ts';
import type { FromWorker, ParseJob } from './csv/protocol.ts';
import { type EpochUnit, parseEpochUnit } from './epoch-units.ts';
import { zoneReader } from './csv/timezone.ts';
import { DecoderThread } from './worker-thread.ts';

/** Rows per batch handed to the COPY writer. */
const BATCH_ROWS = 16_384;
/** Batches the parsing worker may decode ahead of the COPY (about 2 MB each for 14 columns). */
const READ_AHEAD = 2;

const ENTRY = new URL('./csv/worker-entry.mjs', import.meta.url);

function failure(m: FromWorker): AppError {
  if (m.type === 'error') return new AppError(m.error.status, m.error.code, m.error.message, m.error.detail ? { detail: m.error.detail } : {});
  return new AppError(500, 'decoder_crashed', `the CSV reader sent ${m.type} out of turn; nothing was stored`);
}

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
  private parser: DecoderThread<FromWorker> | null = null;

  private constructor(format: 'csv' | 'tsv', private readonly file: SpooledFile, private readonly opts: DecoderOptions) {
    this.format = format;
  }

  static async open(format: 'csv' | 'tsv', body: IngestBody, opts: DecoderOptions): Promise<CsvDecoder> {
    const skipRows = skipRowsOf(opts);
    const timeUnit = timeUnitOf(opts);
    const tz = param(opts, 'tz');
    if (tz !== undefined) zoneReader(tz); // refuses an unknown zone before the body is read
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
    const timePlan: TimePlan = planTime(inf.columns[timeIndex], timeIndex, param(this.opts, 'tz') ?? null);
    const stats = (this.decoded.metadata.csv as Record<string, unknown>);
    stats.time = timePlan.describe;
    const plans: ParseJob['plans'] = [];
    inf.columns.forEach((c, i) => {
      const target = bound.get(c.name);
      if (target && i !== timeIndex) plans.push({ index: i, name: c.name, target });
    });
    const l = this.layout;
    const job: ParseJob = {
      path: this.file.path, size: this.file.size, headerOffset: l.headerOffset, headerLine: l.headerLine, delimiter: l.delimiter,
      decimalComma: l.decimalComma, ncols: inf.columns.length, batchRows: BATCH_ROWS,
      time: { index: timePlan.index, iso: timePlan.iso, unit: timePlan.unit, tz: timePlan.zone ? param(this.opts, 'tz') ?? null : null },
      plans,
    };
    const parser = new DecoderThread<FromWorker>(ENTRY, { reader: 'the CSV reader', workerData: job });
    this.parser = parser;
    try {
      parser.credit(READ_AHEAD);
      while (true) {
        const m = await parser.next();
        if (m.type === 'end') {
          stats.values = Object.fromEntries(plans.map((p, i) => [p.name, { nulls: m.values[i].nulls, nan: m.values[i].nans }]));
          break;
        }
        if (m.type !== 'batch') throw failure(m);
        parser.credit(1);
        const b = m.batch;
        this.subMicro += b.subMicro;
        // The targets came back as copies: the COPY path expects the stream's own column objects.
        const columns: ColumnData[] = b.columns.map((c, i) => ({ column: plans[i].target, values: c.values, validity: c.validity }));
        yield { length: b.length, time: b.time, minTime: b.minTime, maxTime: b.maxTime, columns };
      }
    } finally {
      // At the end the worker has nothing left to do; before it (a bad value, a database error,
      // the client gone) it may be holding a batch back: it is ended either way.
      await parser.end();
    }
  }

  async close(): Promise<void> {
    await this.parser?.end();
    await this.fh?.close().catch(() => undefined);
    this.fh = null;
    await this.file.remove();
  }
}

registerDecoder('csv', (body, opts) => CsvDecoder.open('csv', body, opts));
registerDecoder('tsv', (body, opts) => CsvDecoder.open('tsv', body, opts));
