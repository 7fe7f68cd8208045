// The daily audit check: recomputes the hash chain and writes its head to the server log, so that
// log archives outside the database hold a copy of the head. A log rewritten wholesale (every
// hash recomputed) is consistent in itself; it is caught by comparing heads from those copies
// (GET /v1/audit/verify?expect=<seq>:<hash>). A broken chain fails the run, so the scheduler
// records and surfaces it.
import { registerJob } from '../jobs/registry.ts';
import { verifyAndLog } from './log.ts';

export const AUDIT_VERIFY_JOB = 'audit-verify';
const DAY_MS = 86_400_000;

registerJob({
  name: AUDIT_VERIFY_JOB,
  description: 'Recomputes the audit log hash chain and writes its head hash to the server log',
  defaultIntervalMs: DAY_MS,
  async run(ctx) {
    const result = await verifyAndLog(ctx.db.pool, ctx.log, `job ${AUDIT_VERIFY_JOB}`);
    if (!result.ok) throw new Error(`audit chain broken at entry ${result.first_bad}: ${result.reason}`);
    return { rows: result.entries, details: { head: result.head, entries: result.entries } };
  },
});
