// Uploads seen from another process. `strata backup` run by hand beside a running server does not
// share that server's memory (foreground.ts), so it looks where every upload leaves a trace while
// it runs: its claim in the spool directory (upload-claims.ts). Looked at every POLL_MS; busy
// while one is there and for BUSY_GRACE_MS after, as in the server.
import { BUSY_GRACE_MS } from '../jobs/foreground.ts';
import { uploadsInFlight } from '../ingest/upload-claims.ts';

const POLL_MS = 100;

export class UploadWatch {
  private lastSeen = 0;
  private timer: NodeJS.Timeout | null = null;
  private looking = false;

  constructor(private readonly spoolDir: string) {}

  /** Starts looking; the first answer comes within POLL_MS. */
  start(): this {
    this.timer = setInterval(() => void this.look(), POLL_MS);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  busy(now = Date.now()): boolean {
    return now - this.lastSeen < BUSY_GRACE_MS;
  }

  private async look(): Promise<void> {
    if (this.looking) return;
    this.looking = true;
    try {
      if (await uploadsInFlight(this.spoolDir) > 0) this.lastSeen = Date.now();
    } finally {
      this.looking = false;
    }
  }
}
