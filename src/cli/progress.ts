// Progress on stderr: a redrawn line (bytes, rate, ETA) when stderr is a terminal, nothing in
// between otherwise, so logs and pipes get one plain line per item from the caller.

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

export class ProgressLine {
  private readonly started = Date.now();
  private last = 0;
  private readonly tty: boolean;

  constructor(private readonly label: string, private readonly total: number | null, private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = out.isTTY === true;
  }

  update(done: number, force = false): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const secs = Math.max((now - this.started) / 1000, 1e-3);
    const rate = done / secs;
    let line = `${this.label}  ${formatBytes(done)}`;
    if (this.total !== null && this.total > 0) {
      const frac = Math.min(done / this.total, 1);
      const width = 24;
      const full = Math.round(frac * width);
      line += ` / ${formatBytes(this.total)} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0)}%`;
      line += `  ${formatBytes(rate)}/s  ETA ${formatSeconds((this.total - done) / rate)}`;
    } else {
      line += `  ${formatBytes(rate)}/s`;
    }
    const cols = this.out.columns ?? 100;
    this.out.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 2))}`);
  }

  /** Ends the redrawn line (terminal) and prints `final` as a line of its own. */
  finish(final: string): void {
    if (this.tty) this.out.write(`\r\x1b[K${final}\n`);
    else this.out.write(`${final}\n`);
  }

  get elapsedSeconds(): number {
    return (Date.now() - this.started) / 1000;
  }
}
