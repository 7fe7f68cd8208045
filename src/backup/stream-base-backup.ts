// A base backup received over PostgreSQL's replication protocol (the BASE_BACKUP command that
// pg_basebackup uses), unpacked into a new data directory. It needs only a connection to the
// primary — not its files — so a standby can be made on another machine, with no pg_basebackup.
//
// The protocol (PostgreSQL 15 and later): two ordinary result sets (the start position, then the
// tablespaces), one COPY OUT whose every message starts with a type byte — 'n' a new archive
// (its name and tablespace location), 'd' archive data, 'p' progress — and a last result set (the
// end position). An archive is a ustar stream without its two trailing zero blocks.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { RestoreRefused } from './restore.ts';

/** Unpacks a ustar stream fed in pieces; files are written in order, one at a time. */
export class TarUnpacker {
  private header = Buffer.alloc(512);
  private headerFill = 0;
  private file: { handle: FileHandle | null; left: number; pad: number } | null = null;
  private ended = false;
  files = 0;
  bytes = 0;

  constructor(private readonly root: string) {}

  async write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.file) {
        const f = this.file;
        if (f.left > 0) {
          const n = Math.min(f.left, chunk.length - at);
          if (f.handle) await writeAll(f.handle, chunk.subarray(at, at + n));
          f.left -= n;
          this.bytes += n;
          at += n;
        } else {
          const n = Math.min(f.pad, chunk.length - at);
          f.pad -= n;
          at += n;
        }
        if (f.left === 0 && f.pad === 0) {
          await f.handle?.close();
          this.file = null;
        }
        continue;
      }
      if (this.ended) {
        at = chunk.length; // zero blocks after the end
        continue;
      }
      const n = Math.min(512 - this.headerFill, chunk.length - at);
      chunk.copy(this.header, this.headerFill, at, at + n);
      this.headerFill += n;
      at += n;
      if (this.headerFill === 512) {
        this.headerFill = 0;
        await this.entry(this.header);
      }
    }
  }

  /** The archive ended: a file cut short is an error. */
  async end(): Promise<void> {
    if (this.file && (this.file.left > 0)) {
      await this.file.handle?.close();
      throw new Error('the base backup archive ended in the middle of a file');
    }
    await this.file?.handle?.close();
    this.file = null;
    if (this.headerFill !== 0) throw new Error('the base backup archive ended in the middle of a header');
  }

  private async entry(h: Buffer): Promise<void> {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const stored = parseOctal(h.subarray(148, 156));
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    if (stored !== sum) throw new Error('the base backup archive has a damaged header (checksum)');
    const name = cString(h.subarray(0, 100)).replace(/\/+$/, '');
    const type = String.fromCharCode(h[156] || 48);
    const size = h[124] & 0x80 ? parseBase256(h.subarray(124, 136)) : parseOctal(h.subarray(124, 136));
    const mode = parseOctal(h.subarray(100, 108)) & 0o777;
    const target = this.safePath(name);
    if (type === '5') {
      await mkdir(target, { recursive: true, mode: 0o700 });
      this.file = size > 0 ? { handle: null, left: size, pad: padOf(size) } : null;
    } else if (type === '0') {
      await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      const handle = await open(target, 'wx', mode || 0o600);
      this.files++;
      this.file = { handle, left: size, pad: padOf(size) };
      if (size === 0) {
        await handle.close();
        this.file = null;
      }
    } else if (type === '2') {
      throw new RestoreRefused(`the primary's ${name} is a symbolic link (a tablespace); a standby with tablespaces is not supported`, 'tablespaces');
    } else {
      throw new Error(`the base backup archive holds an entry of type ${JSON.stringify(type)} (${name})`);
    }
  }

  private safePath(name: string): string {
    if (name === '' || path.isAbsolute(name) || name.split('/').includes('..')) {
      throw new Error(`the base backup archive names a path outside the data directory: ${JSON.stringify(name)}`);
    }
    return path.join(this.root, name);
  }
}

async function writeAll(handle: FileHandle, b: Buffer): Promise<void> {
  let off = 0;
  while (off < b.length) off += (await handle.write(b, off, b.length - off)).bytesWritten;
}

const padOf = (size: number): number => (512 - (size % 512)) % 512;

function cString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
}

function parseOctal(b: Buffer): number {
  const s = cString(b).trim();
  if (!/^[0-7]*$/.test(s)) throw new Error('the base backup archive has a damaged header (a number)');
  return s === '' ? 0 : parseInt(s, 8);
}

function parseBase256(b: Buffer): number {
  let v = b[0] & 0x7f;
  for (let i = 1; i < b.length; i++) v = v * 256 + b[i];
  return v;
}

interface CopyDataMessage { chunk: Buffer }
interface Connection { query(text: string): void; stream: { pause(): void; resume(): void } }

/**
 * The BASE_BACKUP command as a pg Submittable: the result sets are collected and the COPY OUT
 * stream is unpacked into `root`, with the socket paused while the disk falls behind.
 */
class BaseBackupCommand {
  readonly results: (string | null)[][][] = [];
  private connection: Connection | null = null;
  private unpacker: TarUnpacker | null = null;
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private paused = false;
  private failure: Error | null = null;
  private done!: (err: Error | null) => void;
  readonly finished = new Promise<void>((resolve, reject) => {
    this.done = (err) => (err ? reject(err) : resolve());
  });

  constructor(private readonly text: string, private readonly root: string) {}

  get unpacked(): { files: number; bytes: number } {
    return { files: this.unpacker?.files ?? 0, bytes: this.unpacker?.bytes ?? 0 };
  }

  submit(connection: Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  handleRowDescription(): void {
    this.results.push([]);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.results.at(-1)?.push(msg.fields);
  }

  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  handleCopyData(msg: CopyDataMessage): void {
    // A copy: the protocol parser reuses its buffer once this handler returns.
    const chunk = Buffer.from(msg.chunk);
    this.queued += chunk.length;
    if (this.queued > 16 << 20 && !this.paused) {
      this.paused = true;
      this.connection?.stream.pause();
    }
    this.chain = this.chain.then(async () => {
      // After a failure the rest is drained unread, so that the command runs to its end.
      if (!this.failure) {
        try {
          await this.message(chunk);
        } catch (err) {
          this.failure = err as Error;
        }
      }
      this.queued -= chunk.length;
      if (this.paused && this.queued < 4 << 20) {
        this.paused = false;
        this.connection?.stream.resume();
      }
    });
  }

  private async message(chunk: Buffer): Promise<void> {
    const type = String.fromCharCode(chunk[0]);
    if (type === 'n') {
      await this.unpacker?.end();
      const name = cString(chunk.subarray(1));
      const location = cString(chunk.subarray(2 + Buffer.byteLength(name)));
      if (location !== '') throw new RestoreRefused(`the primary has a tablespace (${location}); a standby with tablespaces is not supported`, 'tablespaces');
      if (name !== 'base.tar') throw new Error(`the primary sent an archive named ${name}; expected base.tar`);
      this.unpacker = new TarUnpacker(this.root);
    } else if (type === 'd') {
      if (!this.unpacker) throw new Error('the primary sent archive data before an archive');
      await this.unpacker.write(chunk.subarray(1));
    } else if (type !== 'p') {
      throw new Error(`the primary sent a base backup message of type ${JSON.stringify(type)}`);
    }
  }

  handleError(err: Error): void {
    this.failure ??= err;
    // A lost connection sends no ReadyForQuery: finish on the error itself (a second call is a no-op).
    void this.chain.then(() => this.done(this.failure));
  }

  handleReadyForQuery(): void {
    if (this.paused) this.connection?.stream.resume();
    void this.chain.then(async () => {
      await this.unpacker?.end().catch((err: Error) => { this.failure ??= err; });
      this.done(this.failure);
    });
  }
}

export interface StreamedBackup { startLsn: string; endLsn: string; files: number; bytes: number }

/**
 * Takes a base backup of the primary at `url` over a replication connection and unpacks it into
 * the empty directory `pgDir`. The WAL is not included: the caller streams it (a replication slot
 * made before this call keeps it on the primary).
 */
export async function streamBaseBackup(url: string, pgDir: string, label: string): Promise<StreamedBackup> {
  await mkdir(pgDir, { recursive: true, mode: 0o700 });
  const client = new pg.Client({ connectionString: url, replication: 'true' } as pg.ClientConfig);
  await client.connect();
  try {
    const cmd = new BaseBackupCommand(`BASE_BACKUP ( LABEL '${label.replace(/'/g, "''")}', CHECKPOINT 'fast', WAIT false, MANIFEST 'no' )`, pgDir);
    // pg runs any object with submit() as a query; its handlers receive the protocol messages.
    void client.query(cmd as unknown as pg.QueryConfig);
    await cmd.finished;
    const [start, , end] = cmd.results;
    if (!start?.[0] || !end?.[0]) throw new Error('the primary did not report the base backup\'s WAL range');
    for (const d of ['pg_wal/archive_status', 'pg_wal/summaries']) await mkdir(path.join(pgDir, d), { recursive: true, mode: 0o700 });
    return { startLsn: String(start[0][0]), endLsn: String(end[0][0]), ...cmd.unpacked };
  } finally {
    await client.end().catch(() => undefined);
  }
}
