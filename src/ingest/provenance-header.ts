// The Strata-Provenance header: JSON describing who and what produced the upload, checked
// against schemas/provenance.schema.json and bounded in size and depth.
import { AppError } from '../errors/index.ts';
import { jsonDepth, validate } from '../validation/json-schemas.ts';
import { findUnstorable } from '../db/storable.ts';

export const MAX_PROVENANCE_BYTES = 16 * 1024;
export const MAX_PROVENANCE_DEPTH = 16;

export function parseProvenance(header: string | undefined): Record<string, unknown> | null {
  if (header === undefined || header.trim() === '') return null;
  if (Buffer.byteLength(header, 'utf8') > MAX_PROVENANCE_BYTES) {
    throw new AppError(400, 'invalid_provenance', `the Strata-Provenance header is longer than ${MAX_PROVENANCE_BYTES} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(header);
  } catch (err) {
    throw new AppError(400, 'invalid_provenance', `the Strata-Provenance header is not valid JSON: ${(err as Error).message}`);
  }
  if (jsonDepth(value, MAX_PROVENANCE_DEPTH) > MAX_PROVENANCE_DEPTH) {
    throw new AppError(400, 'invalid_provenance', `the Strata-Provenance header nests deeper than ${MAX_PROVENANCE_DEPTH} levels`);
  }
  const bad = findUnstorable(value);
  if (bad) {
    throw new AppError(400, 'invalid_provenance', `the Strata-Provenance header cannot be stored: at ${bad.path} it contains ${bad.reason}`);
  }
  return validate<Record<string, unknown>>('provenance', value, 'the Strata-Provenance header', 'invalid_provenance');
}
