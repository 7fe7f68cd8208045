// Fixture files and the expectations their independent producers computed.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');

export function fixture(rel: string): Buffer {
  return readFileSync(path.join(fixturesDir, rel));
}

export interface ArrowColumnExpectation {
  dtype: string;
  nulls: number;
  nan_count?: number;
  sum?: number | string;
  sum_str?: string;
  min?: number | string;
  max?: number | string;
  true_count?: number;
  distinct?: number;
  value_counts?: Record<string, number>;
  sub_microsecond_count?: number;
}

export interface ArrowExpectation {
  format: 'stream' | 'file';
  rows: number;
  batches: number;
  time_column: string | null;
  first_time: string;
  last_time: string;
  first_time_value: string;
  last_time_value: string;
  sub_microsecond_count: number;
  columns: Record<string, ArrowColumnExpectation>;
}

export function arrowExpectations(): Record<string, ArrowExpectation> {
  const json = JSON.parse(readFileSync(path.join(fixturesDir, 'arrow/expected.json'), 'utf8')) as { files: Record<string, ArrowExpectation> };
  return json.files;
}

export const ARROW_STREAM = 'application/vnd.apache.arrow.stream';
export const ARROW_FILE = 'application/vnd.apache.arrow.file';
