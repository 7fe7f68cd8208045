// Recognises a body's format from its first bytes, so that a file sent under the wrong
// Content-Type is refused with the content type to use instead of a decoder error about message
// lengths deep inside the wrong decoder.
import { AppError } from '../errors/index.ts';
import { type IngestFormat, contentTypeOf } from './formats.ts';

/** Bytes of the decoded body looked at. */
export const SNIFF_BYTES = 8;

interface Signature {
  /** What the body looks like, for messages. */
  name: string;
  /** The format it would be ingested as, or null when Strata takes no such files. */
  format: IngestFormat | null;
  /** What to do instead, when there is no content type to use. */
  advice?: string;
}

const HDF5 = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  if (head.length < bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[i] !== bytes[i]) return false;
  return true;
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** Text: printable ASCII, tabs and line ends, or a UTF-8 BOM or lead byte. */
function looksLikeText(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  for (const b of head) {
    if (b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f) || b >= 0xc2 && b <= 0xf4 || b >= 0x80 && b <= 0xbf) continue;
    return false;
  }
  return true;
}

/** The format the first bytes announce, or null when they announce none. */
export function recognise(head: Uint8Array): Signature | null {
  if (startsWith(head, HDF5)) return { name: 'an HDF5 (or netCDF-4) file', format: 'hdf5' };
  if (startsWith(head, ascii('PAR1'))) return { name: 'a Parquet file', format: 'parquet' };
  if (startsWith(head, ascii('ARROW1'))) return { name: 'an Arrow IPC file', format: 'arrow-file' };
  if (startsWith(head, [0xff, 0xff, 0xff, 0xff])) return { name: 'an Arrow IPC stream', format: 'arrow-stream' };
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) {
    return { name: 'a ZIP archive (an Excel workbook is one)', format: null, advice: 'export the sheet as CSV (UTF-8) and send that with Content-Type: text/csv' };
  }
  if (startsWith(head, [0x1f, 0x8b])) return { name: 'a gzip stream', format: null, advice: 'send it with Content-Encoding: gzip' };
  if (looksLikeText(head)) return { name: 'text (CSV or TSV)', format: 'csv' };
  return null;
}

function family(format: IngestFormat): string {
  return format === 'tsv' ? 'csv' : format;
}

/**
 * Throws 415 content_type_mismatch when the first bytes of the decoded body say it is another
 * format than its Content-Type. Only positive evidence counts: an HDF5 file may start with a user
 * block of any content, a CSV may start with anything printable.
 */
export function checkDeclaredFormat(declared: IngestFormat, head: Uint8Array): void {
  const seen = recognise(head);
  if (!seen) return;
  if (seen.format !== null && family(seen.format) === family(declared)) return;
  if (declared === 'hdf5' && seen.format === 'csv') return; // a user block may be text
  if (seen.format === null && seen.name.startsWith('a gzip')) return; // IngestBody names this one itself
  const use = seen.format !== null ? `send it with Content-Type: ${contentTypeOf[seen.format]}` : seen.advice;
  throw new AppError(415, 'content_type_mismatch',
    `the body looks like ${seen.name}, not ${describe(declared)}; ${use}`,
    { detail: { declared: contentTypeOf[declared], looks_like: seen.format ? contentTypeOf[seen.format] : seen.name } });
}

function describe(format: IngestFormat): string {
  switch (format) {
    case 'arrow-stream': return 'an Arrow IPC stream';
    case 'arrow-file': return 'an Arrow IPC file';
    case 'hdf5': return 'HDF5';
    case 'parquet': return 'Parquet';
    case 'csv': return 'CSV';
    case 'tsv': return 'TSV';
  }
}
