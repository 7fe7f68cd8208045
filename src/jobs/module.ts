// The jobs feature, wired into the server: the scheduler as a background (started by
// startServer, stopped on shutdown), /v1/jobs and /v1/holds, and the jobs and setting this issue
// brings (chunk pre-creation, retention with its "retention" stream setting and its guard against
// uploads into dropped ranges).
import { registerBackground } from '../server.ts';
import { registerRoutes } from '../http/app.ts';
import { jobRoutes } from '../http/routes/jobs.ts';
import { holdRoutes } from '../http/routes/holds.ts';
import { createScheduler } from './scheduler.ts';
import '../partitions/precreate-job.ts';
import '../retention/policy.ts';
import '../retention/retention-job.ts';
import '../retention/expired-ranges.ts';

registerBackground((deps) => createScheduler(deps));
registerRoutes((deps) => ({ path: '/jobs', app: jobRoutes(deps) }));
registerRoutes((deps) => ({ path: '/holds', app: holdRoutes(deps) }));
