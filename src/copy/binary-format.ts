// PostgreSQL's binary COPY framing (https://www.postgresql.org/docs/current/sql-copy.html,
// "Binary Format"): an 11-byte signature, flags, header extension, then tuples of
// int16 field count + (int32 length | -1 for NULL, bytes) per field, then an int16 -1 trailer.

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01T00:00:00Z). */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** The same offset as two int32 halves, for encoders that move 64-bit values as halves. */
export const PG_OFFSET_HI = Number(PG_EPOCH_OFFSET_US / 2n ** 32n);
export const PG_OFFSET_LO = Number(PG_EPOCH_OFFSET_US % 2n ** 32n);

export const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export function copyHeader(): Buffer {
  const buf = Buffer.alloc(19);
  COPY_SIGNATURE.copy(buf, 0);
  buf.writeInt32BE(0, 11); // flags: no OIDs
  buf.writeInt32BE(0, 15); // header extension length
  return buf;
}

export function copyTrailer(): Buffer {
  const buf = Buffer.alloc(2);
  buf.writeInt16BE(-1, 0);
  return buf;
}

/** Byte width of a fixed-size value in binary COPY, or 0 for variable-length types. */
export function fixedWidth(type: string): number {
  switch (type) {
    case 'float8': case 'int8': case 'timestamptz': return 8;
    case 'float4': case 'int4': return 4;
    case 'int2': return 2;
    case 'bool': return 1;
    default: return 0;
  }
}
