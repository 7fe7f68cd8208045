// The HDF5 decoder worker (a worker_threads thread; started through worker-entry.mjs). It owns
// one h5wasm module and reads one file at a time: "open" resolves the mapping and sends the
// schema, then batches flow as the server thread grants credit, then "close". Any failure is
// sent back as an error; the server thread then discards this worker (see pool.ts), because
// h5wasm leaks file handles after errors and is unsound after a wasm abort.
import { parentPort } from 'node:worker_threads';
import type { File as H5File } from 'h5wasm/node';
import { detectMapping } from './detect.ts';
import { openError, otherError, toWire } from './errors.ts';
import { type H5, loadH5 } from './h5.ts';
import { Inspector, describeType } from './inspect.ts';
import type { Mapping, MappingOrigin } from './mapping.ts';
import { planCfTimeSeries } from './plan-cf.ts';
import { planNxlog } from './plan-nexus.ts';
import { planPandasFixed } from './plan-pandas.ts';
import { planCompound, planFlatGroup } from './plan-table.ts';
import { type ReadPlan, describeTime, reportTime } from './plan.ts';
import type { TimeEncoding } from './time.ts';
import { inferenceWarning, resolvePending } from './time-inference.ts';
import type { FromWorker, OpenLimits, OpenedSchema, ToWorker, WireBatch } from './protocol.ts';
import { transferables } from './protocol.ts';
import { provenanceOf } from './provenance.ts';
import { PlanReader } from './read.ts';

const port = parentPort;
if (!port) throw new Error('worker.ts runs in a worker thread');

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

function sendError(err: unknown, what: string): void {
  send({ type: 'error', error: toWire(otherError(err, what)) });
}

function planFor(ins: Inspector, mapping: Mapping, origin: MappingOrigin, limits: OpenLimits): ReadPlan & { unmapped?: unknown[] } {
  switch (mapping.layout) {
    case 'flat_group': return planFlatGroup(ins, mapping, origin, limits);
    case 'compound': return planCompound(ins, mapping, origin, limits);
    case 'nxlog': return planNxlog(ins, mapping, origin, limits);
    case 'cf_timeseries': return planCfTimeSeries(ins, mapping, origin, limits);
    case 'pandas_fixed': return planPandasFixed(ins, mapping, origin, limits);
  }
}

/** Notes time strings without an offset (read as UTC), from the first row. */
function naiveTimeWarning(reader: PlanReader): string[] {
  const seg = reader.plan.segments[0];
  if (!seg || seg.enc.encoding !== 'iso8601' || seg.rows === 0 || seg.time.from !== 'dataset') return [];
  try {
    const first = String((seg.time.info.dataset.slice([[0, 1]]) as unknown[])[0] ?? '');
    return /(Z|[+-]\d{2}(:?\d{2})?)\s*$/i.test(first) ? [] : [`time strings such as ${JSON.stringify(first)} carry no UTC offset; they were read as UTC`];
  } catch {
    reader.noteError();
    return [];
  }
}

/** Decides the unit and epoch of times the file does not declare, from their values (time-inference.ts). */
function resolveTimes(reader: PlanReader, limits: OpenLimits): string[] {
  const plan = reader.plan;
  const warnings: string[] = [];
  const done = new Set<TimeEncoding>();
  for (const seg of plan.segments) {
    if (!seg.enc.pending || done.has(seg.enc)) continue;
    const t = seg.time;
    const what = t.from === 'dataset' ? `time dataset ${t.info.path}` : `time member ${JSON.stringify(t.member.name)} of ${t.path}`;
    resolvePending(seg.enc, reader.timeRange(seg), limits.time.window, what);
    done.add(seg.enc);
    const w = inferenceWarning(seg.enc, what);
    if (w) warnings.push(w);
  }
  const first = plan.segments[0];
  if (first && done.has(first.enc) && plan.mapping.layout !== 'nxlog') {
    plan.mapping.time = reportTime(plan.mapping.time.source, plan.mapping.time.name, first.enc);
    const base = first.time.from === 'dataset' ? describeType(first.time.info.meta) : describeType(first.time.member);
    plan.time.sourceType = describeTime(first.time.kind, base, first.enc);
  }
  return warnings;
}

class Session {
  private file: H5File | null = null;
  private reader: PlanReader | null = null;
  private batches: Generator<WireBatch> | null = null;
  private credits = 0;
  private pumping = false;
  private failed = false;

  constructor(private readonly h5: H5) {}

  open(msg: Extract<ToWorker, { type: 'open' }>): void {
    this.h5.allow(msg.path);
    try {
      this.file = new this.h5.lib.File(msg.path, 'r');
    } catch (err) {
      this.h5.noteError();
      this.failed = true;
      send({ type: 'error', error: toWire(openError(err, msg.bytes)) });
      return;
    }
    try {
      const ins = new Inspector(this.h5, this.file);
      const origin = msg.mapping ? msg.origin : 'auto';
      const plan = planFor(ins, msg.mapping ?? detectMapping(ins), origin, msg.limits);
      this.reader = new PlanReader(this.h5, plan);
      const timeWarnings = resolveTimes(this.reader, msg.limits);
      const { attributes, datasets } = provenanceOf(ins, plan.provenancePaths);
      const schema: OpenedSchema = {
        columns: plan.columns, time: plan.time, mapping: plan.mapping, warnings: [...plan.warnings, ...timeWarnings, ...naiveTimeWarning(this.reader)],
        rows: plan.segments.reduce((a, s) => a + s.rows, 0),
        metadata: {
          hdf5: { library: this.h5.versions.hdf5, layout: plan.mapping.layout, bytes: msg.bytes },
          attributes,
          ...(Object.keys(datasets).length > 0 ? { datasets } : {}),
          ...(plan.unmapped && plan.unmapped.length > 0 ? { unmapped: plan.unmapped } : {}),
        },
      };
      this.batches = this.reader.batches();
      send({ type: 'opened', schema });
    } catch (err) {
      this.h5.noteError();
      this.failed = true;
      sendError(err, 'reading the file structure');
    }
  }

  credit(n: number): void {
    this.credits += n;
    this.pump();
  }

  /** Sends batches while there is credit, yielding between batches so "close" can get through. */
  private pump(): void {
    if (this.pumping || this.failed || !this.batches) return;
    this.pumping = true;
    setImmediate(() => {
      this.pumping = false;
      if (this.failed || !this.batches || this.credits <= 0) return;
      let next: IteratorResult<WireBatch>;
      try {
        next = this.batches.next();
      } catch (err) {
        this.failed = true;
        sendError(err, 'reading the datasets');
        return;
      }
      if (next.done) {
        this.batches = null;
        send({ type: 'end', subMicro: this.reader?.subMicro ?? 0, warnings: [] });
        return;
      }
      this.credits--;
      send({ type: 'batch', batch: next.value }, transferables(next.value));
      this.pump();
    });
  }

  close(): void {
    this.batches = null;
    try {
      this.file?.close();
    } catch {
      this.h5.noteError();
    }
    this.file = null;
    this.h5.allow(null);
    send({ type: 'closed', heapBytes: this.h5.heapBytes(), errors: this.h5.errorCount() });
  }
}

let h5: H5;
try {
  h5 = await loadH5();
} catch (err) {
  sendError(err, 'loading h5wasm');
  throw err;
}
let session: Session | null = null;
port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'open':
      session = new Session(h5);
      session.open(msg);
      break;
    case 'credit':
      session?.credit(msg.n);
      break;
    case 'close':
      if (session) session.close();
      else send({ type: 'closed', heapBytes: h5.heapBytes(), errors: h5.errorCount() });
      session = null;
      break;
  }
});
send({ type: 'ready', versions: h5.versions });
