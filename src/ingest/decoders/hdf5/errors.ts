// HDF5 failures as client-facing errors. h5wasm (with its throwing error handler) throws the
// whole HDF5 error stack as one message; the useful part is matched here and turned into an
// AppError naming the dataset (which the stack never does) and, for chunk failures, the rows.
import { AppError } from '../../../errors/index.ts';

/** What a worker sends back instead of an exception object. */
export interface WireError {
  status: number;
  code: string;
  message: string;
  detail?: Record<string, unknown>;
}

export function toWire(err: AppError): WireError {
  return { status: err.status, code: err.code, message: err.message, detail: err.detail };
}

export function fromWire(w: WireError): AppError {
  return new AppError(w.status, w.code as AppError['code'], w.message, { detail: w.detail });
}

/** True for a wasm abort: the module's state is suspect from then on. */
export function isAbort(err: unknown): boolean {
  return (err as Error)?.name === 'RuntimeError' || /^Aborted\(/.test(String((err as Error)?.message ?? ''));
}

function lastFrame(msg: string): string {
  const frames = msg.split('\n').filter((l) => /#\d+:/.test(l)).map((l) => l.replace(/^\s*#\d+:.*? in /, ''));
  return (frames.at(-1) ?? msg).slice(0, 300);
}

/** Errors while opening the file (before any dataset is read). */
export function openError(err: unknown, bytes: number): AppError {
  if (err instanceof AppError) return err;
  if (isAbort(err)) return crashed(err, 'opening the file');
  const msg = String((err as Error)?.message ?? err);
  const trunc = /truncated file: eof = (\d+), sblock->base_addr = \d+, stored_eof = (\d+)/.exec(msg);
  if (trunc) {
    return new AppError(400, 'truncated_hdf5',
      `the HDF5 file is truncated: ${trunc[1]} bytes received, its superblock says ${trunc[2]}; nothing was stored`,
      { detail: { bytes: Number(trunc[1]), expected: Number(trunc[2]) } });
  }
  if (/file signature not found/.test(msg)) {
    return new AppError(400, 'malformed_hdf5',
      `the body (${bytes} bytes) is not an HDF5 file: no HDF5 signature at byte 0, 512, 1024, 2048 …`);
  }
  if (/superblock|bad byte number in an address|ring type mismatch|address|checksum/i.test(msg)) {
    return new AppError(400, 'malformed_hdf5',
      `the HDF5 file is corrupt or truncated: its header cannot be read (${lastFrame(msg)})`);
  }
  return new AppError(400, 'malformed_hdf5', `the HDF5 file cannot be opened: ${lastFrame(msg)}`);
}

/** Any other failure while doing `what`: HDF5 errors are the file's (422), anything else ours (500). */
export function otherError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  if (isAbort(err)) return crashed(err, what);
  const msg = String((err as Error)?.message ?? err);
  if (/HDF5-DIAG/.test(msg)) return new AppError(422, 'malformed_hdf5', `the HDF5 file cannot be read while ${what}: ${lastFrame(msg)}`);
  return new AppError(500, 'internal', `the HDF5 decoder failed while ${what}: ${msg.slice(0, 300)}`);
}

/** A wasm abort or lost module state, while doing `what`. */
export function crashed(err: unknown, what: string): AppError {
  const msg = String((err as Error)?.message ?? err).split('\n')[0].slice(0, 300);
  return new AppError(422, 'decoder_crashed',
    `the HDF5 decoder crashed while ${what} (${msg || 'no message'}); the file uses a compression or data type combination Strata's decoder cannot read; nothing was stored`,
    { detail: { while: what } });
}

export interface ReadContext {
  dataset: string;
  rows: [number, number];
  filters: { id: number; name: string }[];
}

/** Errors while reading a dataset's slice. */
export function readError(err: unknown, ctx: ReadContext): AppError {
  if (err instanceof AppError) return err;
  const where = `dataset ${ctx.dataset}, rows ${ctx.rows[0]}–${ctx.rows[1] - 1}`;
  if (isAbort(err)) return crashed(err, `reading ${where}`);
  const msg = String((err as Error)?.message ?? err);
  const detail = { dataset: ctx.dataset, rows: ctx.rows };
  const missing = /required filter '([^']+)' is not registered/.exec(msg);
  if (missing) {
    return new AppError(422, 'missing_filter',
      `dataset ${ctx.dataset} needs the HDF5 filter '${missing[1]}', which Strata does not have; re-write the file with gzip, lzf, blosc, bzip2, lz4, zstd or no compression`,
      { detail: { ...detail, filter: missing[1] } });
  }
  if (/filter returned failure during read/.test(msg)) {
    const checksum = ctx.filters.some((f) => f.id === 3);
    return new AppError(422, 'corrupt_data', checksum
      ? `${where}: a chunk failed its checksum (fletcher32) or could not be decoded; the file is corrupt; nothing was stored`
      : `${where}: a chunk could not be decoded (${ctx.filters.map((f) => f.name).join(', ') || 'no filters'}); the file is corrupt; nothing was stored`,
    { detail });
  }
  if (/unable to open external raw data file|H5F_prefix_open_file|can't open file|unable to open file/.test(msg)) {
    return new AppError(422, 'external_data',
      `${ctx.dataset} keeps its data in another file (external storage or link); Strata reads only the uploaded file`, { detail });
  }
  if (msg === '') return crashed(err, `reading ${where}`);
  return new AppError(422, 'corrupt_data', `${where} cannot be read: ${lastFrame(msg)}`, { detail });
}
