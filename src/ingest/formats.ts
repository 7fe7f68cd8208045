// Content types Strata ingests, and the format name each is recorded under.
import { AppError } from '../errors/index.ts';

export type IngestFormat = 'arrow-stream' | 'arrow-file' | 'hdf5';

const BY_TYPE: Record<string, IngestFormat> = {
  'application/vnd.apache.arrow.stream': 'arrow-stream',
  'application/vnd.apache.arrow.file': 'arrow-file',
  'application/x-hdf5': 'hdf5',
  'application/x-netcdf': 'hdf5',
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
