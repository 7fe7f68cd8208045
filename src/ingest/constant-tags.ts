// Constant tags for one upload: ?tag.<name>=<value> adds a text tag column holding <value> on
// every row, so that identical files from two rigs can share one stream and stay apart. A tag
// named like a column of the file is refused (422 tag_clash) rather than silently shadowing it.
import type { ColumnBatch, StreamColumn } from '../domain/types.ts';
import { AppError } from '../errors/index.ts';
import { assertColumnName } from '../streams/identifiers.ts';
import type { DecodedSchema, Decoder } from './decoders/decoder.ts';

const PREFIX = 'tag.';
const MAX_VALUE_CHARS = 1024;

/** The ?tag.<name>= parameters, by name. */
export function constantTagsOf(params: Record<string, string | undefined>): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    if (!key.startsWith(PREFIX) || value === undefined) continue;
    const name = key.slice(PREFIX.length);
    if (name === '') throw new AppError(400, 'invalid_tag', 'a constant tag needs a name: ?tag.<name>=<value>');
    try {
      assertColumnName(name, 'a constant tag');
    } catch (err) {
      throw new AppError(400, 'invalid_tag', `?tag.${name}: ${(err as Error).message}`);
    }
    if (value === '' || value.length > MAX_VALUE_CHARS) {
      throw new AppError(400, 'invalid_tag', `?tag.${name} needs a value of 1–${MAX_VALUE_CHARS} characters`);
    }
    tags[name] = value;
  }
  return tags;
}

/** The decoder with the constant tags as extra text tag columns. */
export function withConstantTags(decoder: Decoder, tags: Record<string, string>): Decoder {
  const names = Object.keys(tags);
  if (names.length === 0) return decoder;
  const inFile = new Set([...decoder.schema.columns.map((c) => c.name), ...decoder.schema.timeCandidates.map((c) => c.name)]);
  const clash = names.filter((n) => inFile.has(n));
  if (clash.length > 0) {
    throw new AppError(422, 'tag_clash',
      `constant tag ${clash.map((n) => JSON.stringify(n)).join(', ')} has the name of a column in the file; rename the tag (?tag.<other name>=) or drop the column`,
      { detail: { tags: clash } });
  }
  const schema: DecodedSchema = {
    ...decoder.schema,
    columns: [...decoder.schema.columns, ...names.map((name) => ({ name, sourceType: 'constant (?tag.)', type: 'text' as const, role: 'tag' as const, unit: null }))],
  };
  const entries = names.map((n) => [new TextEncoder().encode(tags[n])]);
  let zeros = new Uint8Array(0);
  return {
    format: decoder.format,
    schema,
    get subMicrosecondCount() { return decoder.subMicrosecondCount; },
    async *batches(timeColumn: string, bound: ReadonlyMap<string, StreamColumn>): AsyncGenerator<ColumnBatch> {
      const targets = names.map((n) => bound.get(n));
      for await (const batch of decoder.batches(timeColumn, bound)) {
        if (zeros.length < batch.length) zeros = new Uint8Array(batch.length);
        const indices = zeros.subarray(0, batch.length);
        const extra = targets.flatMap((column, i) => (column ? [{ column, values: { kind: 'dictionary' as const, entries: entries[i], indices }, validity: null }] : []));
        yield { ...batch, columns: [...batch.columns, ...extra] };
      }
    },
    close: () => decoder.close(),
    ...('mappingUsed' in decoder ? { get mappingUsed() { return (decoder as { mappingUsed?: unknown }).mappingUsed; } } : {}),
    ...('versions' in decoder ? { versions: (decoder as { versions?: unknown }).versions } : {}),
  } as Decoder;
}
