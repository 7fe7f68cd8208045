// The ustar reader that unpacks a base backup received over the replication protocol, fed with
// archives from independent producers (GNU tar, Python's tarfile) in uneven pieces.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarUnpacker } from '../../src/backup/stream-base-backup.ts';
import { removeDir, tempDir } from '../faults/lib.ts';

let dir: string;
beforeAll(async () => { dir = await tempDir('strata-tar-'); });
afterAll(async () => { await removeDir(dir); });

/** Feeds the archive in pieces of changing sizes (1 byte to 70 KB), as network reads arrive. */
async function unpack(archive: Buffer, into: string): Promise<TarUnpacker> {
  const u = new TarUnpacker(into);
  let at = 0;
  for (let i = 0; at < archive.length; i++) {
    const n = [1, 511, 512, 513, 70_000, 3][i % 6];
    await u.write(archive.subarray(at, at + n));
    at += n;
  }
  await u.end();
  return u;
}

/** PostgreSQL leaves out the two trailing zero blocks; so does this. */
const withoutTrailer = (b: Buffer): Buffer => {
  let end = b.length;
  while (end >= 512 && b.subarray(end - 512, end).every((x) => x === 0)) end -= 512;
  return b.subarray(0, end);
};

describe('the base backup archive reader', () => {
  it('unpacks a GNU tar ustar archive exactly: files, empty files, directories, modes', async () => {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'base', '1'), { recursive: true });
    await mkdir(path.join(src, 'pg_wal', 'archive_status'), { recursive: true });
    const big = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(path.join(src, 'base', '1', '1259'), big, { mode: 0o600 });
    await writeFile(path.join(src, 'PG_VERSION'), '17\n', { mode: 0o600 });
    await writeFile(path.join(src, 'empty'), '', { mode: 0o600 });
    const archive = withoutTrailer(execFileSync('tar', ['--format=ustar', '-C', src, '-cf', '-', 'PG_VERSION', 'base', 'empty', 'pg_wal'], { maxBuffer: 64 << 20 }));
    const out = path.join(dir, 'out');
    const u = await unpack(archive, out);
    expect(u.files).toBe(3);
    expect(u.bytes).toBe(big.length + 3);
    expect((await readFile(path.join(out, 'base', '1', '1259'))).equals(big)).toBe(true);
    expect(await readFile(path.join(out, 'PG_VERSION'), 'utf8')).toBe('17\n');
    expect((await stat(path.join(out, 'empty'))).size).toBe(0);
    expect((await stat(path.join(out, 'base', '1', '1259'))).mode & 0o777).toBe(0o600);
    expect(await readdir(path.join(out, 'pg_wal'))).toEqual(['archive_status']);
  });

  it('refuses a name outside the data directory, a damaged header and an archive cut short', async () => {
    const made = (script: string): Buffer => withoutTrailer(execFileSync('/usr/bin/python3', ['-c', `
import io, sys, tarfile
b = io.BytesIO()
t = tarfile.open(fileobj=b, mode='w', format=tarfile.USTAR_FORMAT)
def add(name, data):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
${script}
t.close()
sys.stdout.buffer.write(b.getvalue())
`]));
    await expect(unpack(made("add('../evil', b'x')"), path.join(dir, 'o1'))).rejects.toThrow(/outside the data directory/);
    await expect(unpack(made("add('/etc/evil', b'x')"), path.join(dir, 'o2'))).rejects.toThrow(/outside the data directory/);

    const ok = made("add('global/pg_control', b'y' * 8192)");
    const damaged = Buffer.from(ok);
    damaged[3] ^= 0x20;
    await expect(unpack(damaged, path.join(dir, 'o3'))).rejects.toThrow(/damaged header/);
    await expect(unpack(ok.subarray(0, 512 + 4000), path.join(dir, 'o4'))).rejects.toThrow(/ended in the middle of a file/);
    await expect(unpack(made("t.addfile(tarfile.TarInfo('x'), None); i = tarfile.TarInfo('tblspc'); i.type = tarfile.SYMTYPE; i.linkname = '/x'; t.addfile(i)"), path.join(dir, 'o5')))
      .rejects.toThrow(/symbolic link/);
  });
});
