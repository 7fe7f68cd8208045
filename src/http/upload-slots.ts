// Admission of uploads: at most `max` are received at once. An upload holds a database
// transaction while its body streams in, so without a bound a handful of slow or stalled
// clients could take every connection; beyond the bound a client gets 503 too_many_uploads
// with Retry-After at once, rather than waiting on a connection with its body half sent.
import { AppError } from '../errors/index.ts';

/** Seconds a refused upload is told to wait (Retry-After). */
const RETRY_AFTER_S = 2;

export class UploadSlots {
  private inUse = 0;

  constructor(readonly max: number) {}

  get active(): number {
    return this.inUse;
  }

  /** Takes a slot, or throws 503 too_many_uploads; the returned function gives it back (once). */
  take(): () => void {
    if (this.inUse >= this.max) {
      throw new AppError(503, 'too_many_uploads',
        `the server is receiving ${this.max} uploads already (STRATA_MAX_CONCURRENT_UPLOADS); retry in ${RETRY_AFTER_S} s`,
        { retryAfter: RETRY_AFTER_S, detail: { max_concurrent_uploads: this.max } });
    }
    this.inUse++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.inUse--;
    };
  }
}
