// The one place identifiers are quoted. Identifiers that come from user data are first mapped
// to safe names (see streams/identifiers.ts); this quoting is the second line of defence.

/** Quotes a PostgreSQL identifier, doubling embedded quotes. */
export function ident(name: string): string {
  if (name.includes('\0')) throw new Error('identifier contains a NUL byte');
  return `"${name.replace(/"/g, '""')}"`;
}

/** A schema-qualified, quoted table name. */
export function qualified(schema: string, table: string): string {
  return `${ident(schema)}.${ident(table)}`;
}

/** Schema holding every stream table and its chunks. */
export const DATA_SCHEMA = 'strata_data';
