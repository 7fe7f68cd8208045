// The stream setting "compress_after": how old a raw chunk (its end) must be before the
// `compression` job rewrites it into segments — "7 days" unless the stream says otherwise;
// null: never.
import { formatInterval, parseInterval } from '../domain/interval.ts';
import { AppError } from '../errors/index.ts';
import { registerStreamSetting } from '../streams/settings.ts';

export const DEFAULT_COMPRESS_AFTER = '7 days';
/** Compressing sooner than this would rewrite chunks still being written to. */
const MIN_US = 3_600_000_000n;

export function parseCompressAfter(value: unknown, stream: { name: string }): string | null {
  if (value === null) return null;
  const us = typeof value === 'string' ? parseInterval(value) : null;
  if (us === null || us < MIN_US) {
    throw new AppError(400, 'invalid_body',
      `stream ${JSON.stringify(stream.name)}: compress_after is ${JSON.stringify(value)}; give a fixed interval of at least 1 hour such as "7 days", or null to keep its chunks uncompressed`);
  }
  return formatInterval(us);
}

/** µs, or null when the stream's chunks are never compressed (the setting is null, kept as absent). */
export function compressAfterUs(settings: Record<string, unknown>): bigint | null {
  const v = settings.compress_after;
  return typeof v === 'string' ? parseInterval(v) : null;
}

registerStreamSetting<string>({
  key: 'compress_after',
  defaultValue: () => DEFAULT_COMPRESS_AFTER,
  parse: (value, stream) => parseCompressAfter(value, stream),
  show: (value) => value,
});
