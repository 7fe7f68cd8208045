// Names from user data (stream names, Arrow column names, HDF5 paths) become SQL identifiers
// only through safeIdentifier: lower-case ASCII letters, digits and underscores, ≤ 63 bytes,
// unique within their table. The original name is kept in the catalog.
import { AppError } from '../errors/index.ts';
import { unstorableReason } from '../db/storable.ts';

const RESERVED = new Set(['time', 'ingest_id', 'tableoid', 'xmin', 'xmax', 'cmin', 'cmax', 'ctid', 'oid']);
const MAX_IDENT = 63;

export function safeIdentifier(name: string, taken: ReadonlySet<string>, maxLength = MAX_IDENT): string {
  let base = name.normalize('NFKD').toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/_+/g, '_').replace(/^_|_$/g, '');
  if (base === '' || !/^[a-z_]/.test(base)) base = `c_${base}`.replace(/_$/, '');
  base = base.slice(0, maxLength - 6).replace(/_$/, '');
  if (RESERVED.has(base)) base = `${base}_`;
  let candidate = base;
  for (let n = 2; taken.has(candidate); n++) candidate = `${base}_${n}`;
  return candidate;
}

/** Stream names appear in URLs and logs; they are restricted to a safe, readable alphabet. */
export const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function assertStreamName(name: string): void {
  if (!STREAM_NAME.test(name)) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}… (${name.length} characters)` : name;
    throw new AppError(400, 'invalid_request',
      `invalid stream name ${JSON.stringify(shown)}: use 1–128 characters from A–Z a–z 0–9 . _ - starting with a letter or digit`);
  }
}

/** Column names are stored verbatim, but must be usable text. */
export function assertColumnName(name: string, where: string): void {
  if (name.length === 0 || name.length > 1024 || [...name].some((ch) => ch.charCodeAt(0) < 0x20)) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}… (${name.length} characters)` : name;
    throw new AppError(422, 'invalid_request',
      `${where}: column name ${JSON.stringify(shown)} is not allowed (1–1024 characters, no control characters)`);
  }
  // Decoders turn bytes that are not UTF-8 into U+FFFD: such a name could not be kept verbatim.
  if (name.includes('\uFFFD') || unstorableReason(name) !== null) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}… (${name.length} characters)` : name;
    throw new AppError(422, 'invalid_request',
      `${where}: column name ${JSON.stringify(shown)} is not valid UTF-8 (it holds U+FFFD or an unpaired surrogate); rename the column in the file`);
  }
}
