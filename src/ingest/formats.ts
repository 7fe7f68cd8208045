// Content types Strata ingests, and the format name each is recorded under.
import { AppError } from '../errors/index.ts';

export type IngestFormat = 'arrow-stream' | 'arrow-file' | 'hdf5' | 'parquet' | 'csv' | 'tsv';

const BY_TYPE: Record<string, IngestFormat> = {
  'application/vnd.apache.arrow.stream': 'arrow-stream',
  'application/vnd.apache.arrow.file': 'arrow-file',
  'application/x-hdf5': 'hdf5',
  'application/x-netcdf': 'hdf5',
  'application/vnd.apache.parquet': 'parquet',
  'text/csv': 'csv',
  'text/tab-separated-values': 'tsv',
};

/** The content type a client should send for each format (the first listed above). */
export const contentTypeOf: Record<IngestFormat, string> = {
  'arrow-stream': 'application/vnd.apache.arrow.stream',
  'arrow-file': 'application/vnd.apache.arrow.file',
  hdf5: 'application/x-hdf5',
  parquet: 'application/vnd.apache.parquet',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
};

export const supportedContentTypes = Object.keys(BY_TYPE);

export function formatOf(contentType: string | undefined): IngestFormat {
  const base = (contentType ?? '').split(';')[0].trim().toLowerCase();
  const format = BY_TYPE[base];
  if (!format) {
    throw new AppError(415, 'unsupported_media_type',
      `Content-Type ${JSON.stringify(contentType ?? '')} is not ingested; use one of ${supportedContentTypes.join(', ')}`);
  }
  return format;
}

/** The charset parameter of a Content-Type, lower-cased, or null. */
export function charsetOf(contentType: string | undefined): string | null {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '');
  return m ? m[1].toLowerCase() : null;
}
