// The first admin key, handed to the operator without passing through the structured log (which
// operators ship off the machine): written to a file only its owner can read, and shown on the
// terminal when there is one.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const ADMIN_KEY_FILE = 'admin-key';

/** Writes `secret` to `<dataDir>/admin-key` (mode 600, replacing an older file); returns its path. */
export async function writeAdminKeyFile(dataDir: string, secret: string): Promise<string> {
  const file = path.join(dataDir, ADMIN_KEY_FILE);
  await mkdir(dataDir, { recursive: true });
  // Created afresh ('wx'): an older file may have looser permissions, or be a symbolic link.
  await rm(file, { force: true });
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return file;
}

/** What the terminal shows: the key itself only when stderr is a terminal, never a log. */
export function adminKeyNotice(file: string, secret: string, toTerminal: boolean): string {
  if (!toTerminal) return `strata: the first admin API key was written to ${file} (readable by its owner only)\n`;
  return `\nFirst admin API key (only its hash is stored; also written to ${file}, readable by its owner only):\n\n  ${secret}\n\n`;
}
