// Liveness and readiness. /healthz answers from the process alone; /readyz checks that PostgreSQL
// answers and every migration is applied, and lists the health of components that report it.
import { Hono } from 'hono';
import type { AppDeps } from '../deps.ts';
import { checkDatabase } from '../../db/health.ts';

export type HealthCheck = () => Promise<{ name: string; ok: boolean; detail?: unknown }[]>;

export function healthRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    const db = await checkDatabase(deps.db);
    const checks: { name: string; ok: boolean; detail?: unknown }[] = [{ name: 'database', ok: db.reachable && db.migrationsApplied, detail: db }];
    for (const extra of (deps.services.healthChecks as HealthCheck[] | undefined) ?? []) {
      checks.push(...(await extra().catch((e: Error) => [{ name: 'health check', ok: false, detail: { error: e.message } }])));
    }
    const ready = db.reachable && db.migrationsApplied;
    const body = { ready, ok: ready && checks.every((x) => x.ok), checks };
    return c.json(body, ready ? 200 : 503);
  });
  return app;
}
