// The watcher's memory: an append-only file of JSON lines, each written with fsync before the
// watcher acts on it, so that what it records survives a crash or a power cut. A line cut short
// by a crash is skipped on reading. A file is known by its name, size and SHA-256: the same name
// with other bytes (an instrument that reuses names) is a new file.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';

export type JournalEvent =
  | { event: 'sending'; file: string; size: number; sha256: string; at: string }
  | { event: 'stored'; file: string; size: number; sha256: string; ingest: string; rows: number; duplicate: boolean; at: string }
  | { event: 'refused'; file: string; size: number; sha256: string; code: string; message: string; at: string }
  | { event: 'moved'; file: string; sha256: string; to: string; at: string };

export const fileKey = (file: string, size: number, sha256: string): string => `${file}\n${size}\n${sha256}`;

export class Journal {
  private readonly fd: number;
  /** Files stored (or refused for good), by fileKey. */
  readonly finished = new Map<string, JournalEvent>();
  /** Files whose upload began and has no outcome: sent again (the server answers duplicate if it had them). */
  readonly unfinished = new Map<string, JournalEvent>();
  readonly moved = new Set<string>();

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    if (existsSync(file)) this.load(readFileSync(file, 'utf8'));
    this.fd = openSync(file, 'a');
  }

  private load(text: string): void {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let e: JournalEvent;
      try { e = JSON.parse(line) as JournalEvent; } catch { continue; }
      this.apply(e);
    }
  }

  private apply(e: JournalEvent): void {
    if (e.event === 'moved') { this.moved.add(`${e.file}\n${e.sha256}`); return; }
    const k = fileKey(e.file, e.size, e.sha256);
    if (e.event === 'sending') { if (!this.finished.has(k)) this.unfinished.set(k, e); return; }
    this.unfinished.delete(k);
    this.finished.set(k, e);
  }

  /** Appends one event and waits for it to reach the disk. */
  append(e: JournalEvent): void {
    writeSync(this.fd, `${JSON.stringify(e)}\n`);
    fsyncSync(this.fd);
    this.apply(e);
  }

  close(): void {
    closeSync(this.fd);
  }
}
