// Opens the decoder for an upload's format. Stream formats decode straight from the body;
// file formats are spooled to disk first and read with random access.
import { AppError } from '../../errors/index.ts';
import type { IngestBody } from '../body.ts';
import type { IngestFormat } from '../formats.ts';
import type { StreamColumn } from '../../domain/types.ts';
import { spoolToFile } from '../spool.ts';
import { ArrowDecoder } from './arrow.ts';
import type { Decoder } from './decoder.ts';
import type { TimeWindow } from './epoch-units.ts';

export interface DecoderOptions {
  maxBatchBytes: number;
  maxHdf5Bytes: number;
  spoolDir: string;
  /** Raw and decoded bytes are the same (no Content-Encoding): the archive spool can be read directly. */
  identityEncoding: boolean;
  /** Format-specific request options (e.g. an HDF5 mapping). */
  params: Record<string, string | undefined>;
  /** Largest decoded size of the upload (STRATA_MAX_INFLATED_BYTES). */
  maxInflatedBytes: number;
  /** The target stream's feature settings (e.g. its stored HDF5 mapping); empty for a new stream. */
  streamSettings: Record<string, unknown>;
  /** Plausible instants for epoch numbers without a unit (STRATA_TIME_WINDOW); the default when absent. */
  timeWindow?: TimeWindow;
  /** The target stream's columns and time column (CSV reads known columns as the stream's types); empty for a new stream. */
  streamColumns?: readonly StreamColumn[];
  streamTimeColumn?: string | null;
}

/**
 * Whether the decoder reads the body back from the archive spool (a file format whose body needs
 * no inflating, see spoolToFile), so the spool should stay in the page cache.
 */
export function readsSpoolBack(format: IngestFormat, identityEncoding: boolean): boolean {
  return identityEncoding && format !== 'arrow-stream';
}

export type DecoderOpener = (body: IngestBody, opts: DecoderOptions) => Promise<Decoder>;

const openers: Partial<Record<IngestFormat, DecoderOpener>> = {
  'arrow-stream': (body, opts) => ArrowDecoder.openStream(body.chunks(), opts),
  'arrow-file': async (body, opts) => {
    const file = await spoolToFile(body, opts.spoolDir, opts.identityEncoding);
    try {
      return await ArrowDecoder.openFile(file.path, file.size, opts, file.remove);
    } catch (err) {
      await file.remove();
      throw err;
    }
  },
};

/** Lets a format module register its decoder (keeps this file free of format details). */
export function registerDecoder(format: IngestFormat, opener: DecoderOpener): void {
  openers[format] = opener;
}

export async function openDecoder(format: IngestFormat, body: IngestBody, opts: DecoderOptions): Promise<Decoder> {
  const opener = openers[format];
  if (!opener) throw new AppError(415, 'unsupported_media_type', `uploads in format ${format} are not accepted by this server`);
  return opener(body, opts);
}
