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

/**
 * Quotes a text value as a SQL literal, for the statements that take no parameters (COPY): quotes
 * doubled, and backslashes doubled inside an E'' literal whatever standard_conforming_strings says.
 */
export function literal(value: string): string {
  if (value.includes('\0')) throw new Error('literal contains a NUL byte');
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}
