// The Content-Type (and Content-Encoding) of a file, from its first bytes; the name decides only
// between formats whose bytes look alike (netCDF4 is HDF5; TSV and CSV are both text).
import { open } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

export interface FileType {
  contentType: string;
  contentEncoding?: string;
  /** What was recognised, for messages. */
  name: string;
}

const HDF5 = Buffer.from('\x89HDF\r\n\x1a\n', 'latin1');

function fromBytes(head: Buffer, name: string): FileType | null {
  const lower = name.toLowerCase();
  if (head.subarray(0, 8).equals(HDF5)) {
    return /\.(nc|nc4|netcdf|cdf)$/.test(lower) ? { contentType: 'application/x-netcdf', name: 'netCDF4' } : { contentType: 'application/x-hdf5', name: 'HDF5' };
  }
  if (head.subarray(0, 4).toString('latin1') === 'PAR1') return { contentType: 'application/vnd.apache.parquet', name: 'Parquet' };
  if (head.subarray(0, 6).toString('latin1') === 'ARROW1') return { contentType: 'application/vnd.apache.arrow.file', name: 'Arrow file' };
  if (head.length >= 4 && head.readUInt32LE(0) === 0xffffffff) return { contentType: 'application/vnd.apache.arrow.stream', name: 'Arrow stream' };
  if (head.length >= 8 && head.readInt32LE(0) > 0 && /\.(arrows|arrow|ipc|feather)$/.test(lower)) {
    // Arrow streams from before the continuation marker (0.14) start with the metadata length.
    return { contentType: 'application/vnd.apache.arrow.stream', name: 'Arrow stream (legacy)' };
  }
  if (head.length > 0 && !head.includes(0)) {
    const firstLine = head.toString('utf8').split(/\r?\n/)[0];
    const tsv = /\.(tsv|tab)$/.test(lower) || (firstLine.includes('\t') && !firstLine.includes(','));
    return tsv ? { contentType: 'text/tab-separated-values', name: 'TSV' } : { contentType: 'text/csv', name: 'CSV' };
  }
  return null;
}

export async function detectFileType(file: string, name = file): Promise<FileType | null> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const bytes = head.subarray(0, bytesRead);
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      let inner: Buffer;
      try { inner = gunzipSync(bytes, { finishFlush: 2 /* Z_SYNC_FLUSH: a prefix is enough */ }); } catch { return null; }
      const t = fromBytes(inner, name.replace(/\.gz$/i, ''));
      return t && { ...t, contentEncoding: 'gzip', name: `${t.name}, gzip` };
    }
    return fromBytes(bytes, name);
  } finally {
    await fh.close();
  }
}
