// What an upload leaves on disk while it runs, and what happens to it when its process dies.
//
// Every spool file's name carries its owner: the machine, the process id and the process's start
// time (so that a reused pid is not mistaken for the owner). Next to an upload's spooled original
// sits its claim: the ingest id the upload was given and what was known of it when it began.
// When the upload ends, the claim goes with the spool. When the process is killed, both stay
// behind; the next start on this machine (of any Strata sharing the spool directory) finds the
// files of a process that no longer runs, records each claimed upload as a rejected ingest with
// code `interrupted`, and removes them. Files whose owner still runs, or that belong to another
// machine, are left alone.
//
// A rejection that cannot be recorded when it happens (PostgreSQL unreachable) is kept in
// `unrecorded/` and written once the database answers again.
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Db } from '../db/pool.ts';
import type { Actor } from '../audit/log.ts';
import { isConnectionError } from '../errors/index.ts';
import { type IngestFacts, getIngest, recordRejectedIngest } from '../provenance/ingest-records.ts';

const UNRECORDED = 'unrecorded';
/** Files from before spool names carried their owner: it is unknown, so only old ones are removed. */
const LEGACY_FILE = /^(body|decoded)-[0-9a-f-]{36}$/;
const LEGACY_MAX_AGE_MS = 3_600_000;

interface Owner { host: string; pid: number; start: string }

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function hostTag(): string {
  return os.hostname().replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 64) || 'host';
}

const self: Owner = { host: hostTag(), pid: process.pid, start: processStart(process.pid) ?? String(Date.now()) };

function ownerName(o: Owner): string {
  return `${o.host}~${o.pid}~${o.start}`;
}

export type SpoolKind = 'body' | 'decoded' | 'claim';

/** The owner of a spool file (`<kind>.<host>~<pid>~<start>.<rest>`), or null for a name of another shape. */
function parseOwner(name: string): (Owner & { kind: SpoolKind }) | null {
  const m = /^(body|decoded|claim)\.([A-Za-z0-9._-]+)~(\d+)~(\d+)\.[^/]+$/.exec(name);
  return m ? { kind: m[1] as SpoolKind, host: m[2], pid: Number(m[3]), start: m[4] } : null;
}

/** Whether the process that owns a spool directory may still be running. */
function mayBeAlive(o: Owner): boolean {
  if (o.host !== self.host) return true; // another machine's: we cannot tell
  if (o.pid === self.pid && o.start === self.start) return true;
  const start = processStart(o.pid);
  if (start !== null) return start === o.start;
  try {
    process.kill(o.pid, 0);
    return true; // no /proc here: a live pid is taken to be the owner
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Uploads in flight in any process using this spool directory (their claims; those of processes
 * that no longer run are left out). For a process that does not share the server's memory.
 */
export async function uploadsInFlight(spoolDir: string): Promise<number> {
  const names = await readdir(spoolDir).catch(() => [] as string[]);
  let n = 0;
  for (const name of names) {
    const o = parseOwner(name);
    if (o?.kind === 'claim' && mayBeAlive(o)) n++;
  }
  return n;
}

/** A spool file name owned by this process. */
export function spoolFileName(kind: SpoolKind, rest: string): string {
  return `${kind}.${ownerName(self)}.${rest}`;
}

interface ClaimFile {
  facts: Record<string, unknown>;
  actor: Actor;
  /** Set when the upload was refused but its record could not be written. */
  reason?: { code: string; message: string; status: number };
}

function toJson(facts: IngestFacts): Record<string, unknown> {
  return JSON.parse(JSON.stringify(facts, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
}

function fromJson(j: Record<string, unknown>): IngestFacts {
  const big = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(v as string));
  return {
    ...(j as unknown as IngestFacts), id: big(j.id) as bigint, receivedAt: new Date(j.receivedAt as string),
    timeMin: big(j.timeMin), timeMax: big(j.timeMax), rows: 0, archivePath: null,
  };
}

export class UploadClaim {
  private constructor(private readonly file: string, private readonly body: ClaimFile) {}

  /** Writes the claim of an upload that has been given its ingest id. */
  static async write(spoolDir: string, facts: IngestFacts, actor: Actor): Promise<UploadClaim> {
    await mkdir(spoolDir, { recursive: true });
    const file = path.join(spoolDir, spoolFileName('claim', `ingest-${facts.id}.json`));
    const body: ClaimFile = { facts: toJson(facts), actor };
    await writeFile(file, JSON.stringify(body), { mode: 0o600 });
    return new UploadClaim(file, body);
  }

  /** The upload ended and its record is written (or it needs none): the claim goes. */
  async remove(): Promise<void> {
    await rm(this.file, { force: true });
  }

  /**
   * The upload was refused but its record could not be written: the claim moves to
   * unrecorded/, with the facts as they are now, to be recorded once the database answers.
   */
  async keepUnrecorded(root: string, facts: IngestFacts, reason: ClaimFile['reason']): Promise<void> {
    const dir = path.join(root, UNRECORDED);
    await mkdir(dir, { recursive: true });
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, JSON.stringify({ ...this.body, facts: toJson(facts), reason }), { mode: 0o600 });
    await rename(tmp, path.join(dir, path.basename(this.file)));
    await rm(this.file, { force: true });
  }
}

export interface SpoolRecovery {
  /** Files removed (spooled bodies, decoded copies, claims). */
  files: number;
  bytes: number;
  /** Ingest ids recorded as rejected: interrupted, or refused while the database was unreachable. */
  recorded: string[];
  /** Claims whose record could not be written for a reason that will not pass (they are removed): why. */
  failed: string[];
}

async function recordClaim(db: Db, claim: ClaimFile, fallback: ClaimFile['reason']): Promise<string | null> {
  const facts = fromJson(claim.facts);
  if (await getIngest(db.pool, facts.id)) return null; // recorded already (by another process's sweep)
  const reason = claim.reason ?? fallback as NonNullable<ClaimFile['reason']>;
  try {
    await recordRejectedIngest(db, facts, reason, claim.actor);
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return null;
    throw err;
  }
  return facts.id.toString();
}

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => null))?.size ?? 0;
}

/** Records the claim in file (if it is a readable claim); false when the database is unreachable. */
async function settleClaim(db: Db, file: string, fallback: ClaimFile['reason'], out: SpoolRecovery): Promise<boolean> {
  let claim: ClaimFile | null = null;
  try {
    claim = JSON.parse(await readFile(file, 'utf8')) as ClaimFile;
  } catch { /* a claim cut short by the kill: nothing to record from it */ }
  if (!claim) return true;
  try {
    const id = await recordClaim(db, claim, fallback);
    if (id) out.recorded.push(id);
    return true;
  } catch (err) {
    if (isConnectionError(err)) return false;
    // A start must not fail on one claim it cannot record: that is reported, and the claim goes.
    out.failed.push(`${path.basename(file)}: ${(err as Error).message}`);
    return true;
  }
}

async function removeFile(file: string, out: SpoolRecovery): Promise<void> {
  out.bytes += await sizeOf(file);
  out.files++;
  await rm(file, { force: true });
}

const INTERRUPTED = {
  code: 'interrupted', status: 503,
  message: 'the server stopped (it was killed or crashed) while it received the upload; nothing of it was stored',
};

/**
 * At start: records the uploads of processes that no longer run as rejected (interrupted),
 * removes their spool files, and records refusals that could not be recorded earlier.
 */
export async function recoverSpool(root: string, db: Db): Promise<SpoolRecovery> {
  const out: SpoolRecovery = { files: 0, bytes: 0, recorded: [], failed: [] };
  const names = await readdir(root).catch(() => [] as string[]);
  // Claims first: a claim is removed only once its record is written.
  names.sort((a, b) => Number(b.startsWith('claim.')) - Number(a.startsWith('claim.')));
  for (const name of names) {
    const file = path.join(root, name);
    const owner = parseOwner(name);
    if (owner) {
      if (mayBeAlive(owner)) continue;
      if (owner.kind === 'claim' && !(await settleClaim(db, file, INTERRUPTED, out))) return out;
      await removeFile(file, out);
    } else if (LEGACY_FILE.test(name)) {
      const st = await stat(file).catch(() => null);
      if (st && Date.now() - st.mtimeMs > LEGACY_MAX_AGE_MS) await removeFile(file, out);
    }
  }
  await recordUnrecorded(root, db, out);
  return out;
}

/** Writes the records of refusals that happened while the database was unreachable. */
export async function recordUnrecorded(root: string, db: Db, out: SpoolRecovery = { files: 0, bytes: 0, recorded: [], failed: [] }): Promise<SpoolRecovery> {
  const dir = path.join(root, UNRECORDED);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    if (!(await settleClaim(db, file, INTERRUPTED, out))) break;
    await removeFile(file, out);
  }
  return out;
}
