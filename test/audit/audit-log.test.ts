// The audit log: what is recorded (with the actor's key and role), paging and filters, the
// verification of the hash chain through the API, the CLI and the daily job (each writing the head
// to the log), and tampering: the database refuses edits, and edits made anyway with the triggers
// disabled by a superuser — a changed entry, a deleted entry, a rewrite of the whole chain — are
// named by the verification.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { committed, json, upload } from '../helpers/uploads.ts';
import { type AuditEntry, appendAudit, auditHead, systemActor } from '../../src/audit/log.ts';
import { entryHash } from '../../src/audit/canonical.ts';
import { registeredJob } from '../../src/jobs/registry.ts';
import { AUDIT_VERIFY_JOB } from '../../src/audit/verify-job.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { withTransaction } from '../../src/db/pool.ts';
import { recordUnrecorded } from '../../src/ingest/upload-claims.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger('info', { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } }), lines };
}

async function entries(t: TestApp, query = ''): Promise<{ entries: AuditEntry[]; next_after: number | null }> {
  const res = await t.request(`/v1/audit${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json() as Promise<{ entries: AuditEntry[]; next_after: number | null }>;
}

async function verify(t: TestApp, query = ''): Promise<Record<string, unknown>> {
  const res = await t.request(`/v1/audit/verify${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json() as Promise<Record<string, unknown>>;
}

/** A test app with a few entries of every common kind. */
async function populated(): Promise<TestApp> {
  // Room for the nine uploads the concurrency test sends at once (the default admits 8; the
  // ninth would be refused, unaudited, whenever the others were still running).
  const t = await createTestApp({ maxConcurrentUploads: 16 });
  await committed(t, 'audited', { sample: 'S-1' });
  await committed(t, 'audited', { sample: 'S-2', start: 1_709_251_200_000_000n + 3_600_000_000n });
  const k = await t.request('/v1/keys', json({ method: 'POST', body: { name: 'tech', role: 'reader' } }));
  await t.request(`/v1/keys/${((await k.json()) as { id: number }).id}`, { method: 'DELETE' });
  return t;
}

function runCli(t: TestApp, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], {
      cwd: root, env: { ...process.env, DATABASE_URL: t.db.url }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('what the audit log records', () => {
  let t: TestApp;
  beforeAll(async () => { t = await populated(); });
  afterAll(async () => { await t.close(); });

  it('records stream creation, ingests, rejections and key changes with the actor key and role', async () => {
    const refused = await t.request('/v1/streams/audited/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: Buffer.from('0a00ff13c7e2f00e9d', 'hex') });
    expect(refused.status, await refused.clone().text()).toBe(400);
    const { entries: all } = await entries(t, '?limit=1000');
    const actions = all.map((e) => e.action);
    for (const a of ['key.create', 'stream.create', 'ingest.commit', 'ingest.reject', 'key.revoke']) expect(actions).toContain(a);
    const commit = all.find((e) => e.action === 'ingest.commit') as AuditEntry;
    expect(commit.actor_role).toBe('admin');
    expect(commit.actor_key_id).toBe(1);
    expect(commit.subject).toMatch(/^ingest:\d+$/);
    expect(commit.details).toMatchObject({ stream: 'audited', rows: 10 });
    expect(commit.hash).toMatch(/^[0-9a-f]{64}$/);
    const reject = all.find((e) => e.action === 'ingest.reject') as AuditEntry;
    expect(reject.details).toMatchObject({ code: 'malformed_arrow', status: 400 });
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
  });

  it('pages with after and limit, filters by action and subject, and refuses malformed parameters', async () => {
    const page1 = await entries(t, '?limit=2');
    expect(page1.entries.map((e) => e.seq)).toEqual([1, 2]);
    expect(page1.next_after).toBe(2);
    const page2 = await entries(t, `?limit=2&after=${page1.next_after}`);
    expect(page2.entries.map((e) => e.seq)).toEqual([3, 4]);
    const commits = await entries(t, '?action=ingest.commit');
    expect(commits.entries.length).toBe(2);
    expect(commits.next_after).toBeNull();
    const one = commits.entries[0];
    const bySubject = await entries(t, `?subject=${encodeURIComponent(one.subject)}`);
    expect(bySubject.entries.map((e) => e.seq)).toEqual([one.seq]);
    for (const bad of ['?after=-1', '?after=abc', '?limit=0', '?limit=1001', '?limit=1e3', `?action=${'a'.repeat(2000)}`]) {
      const res = await t.request(`/v1/audit${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_request');
    }
  });

  it('verifies an intact chain: ok, the number of entries and the newest hash, also written to the server log', async () => {
    const { log, lines } = capturingLogger();
    t.deps.log = log;
    const result = await verify(t);
    const head = await auditHead(t.db.pool);
    expect(result).toEqual({ ok: true, entries: head?.seq, head: head?.hash });
    const line = lines.find((l) => l.msg === 'audit chain verified');
    expect(line).toMatchObject({ audit_head: head?.hash, audit_entries: head?.seq });
  });

  it('verifies against hashes an outside copy holds, and refuses malformed ones', async () => {
    const head = await auditHead(t.db.pool) as { seq: number; hash: string };
    expect((await verify(t, `?expect=${head.seq}:${head.hash}`)).ok).toBe(true);
    const wrong = await verify(t, `?expect=${head.seq}:${'0'.repeat(64)}`);
    expect(wrong).toMatchObject({ ok: false, first_bad: head.seq });
    const beyond = await verify(t, `?expect=${head.seq + 100}:${head.hash}`);
    expect(beyond).toMatchObject({ ok: false, first_bad: head.seq + 100 });
    expect(String(beyond.reason)).toContain('no longer in the log');
    for (const bad of ['?expect=1', '?expect=x:y', `?expect=0:${head.hash}`]) expect((await t.request(`/v1/audit/verify${bad}`)).status, bad).toBe(400);
  });

  it('refuses UPDATE, DELETE and TRUNCATE, also for a superuser and with session_replication_role = replica', async () => {
    const attempts = ['UPDATE strata.audit_log SET action = \'x\' WHERE seq = 1', 'DELETE FROM strata.audit_log WHERE seq = 1', 'TRUNCATE strata.audit_log'];
    for (const replica of [false, true]) {
      for (const sql of attempts) {
        const err = await withTransaction(t.db, async (tx) => {
          if (replica) await tx.query('SET LOCAL session_replication_role = replica');
          await tx.query(sql);
        }).then(() => null, (e: Error & { code?: string }) => e);
        expect(err?.message, `${sql} (replica: ${replica})`).toMatch(/append-only/);
        expect(err?.code).toBe('42501');
      }
    }
    expect((await verify(t)).ok).toBe(true);
  });

  it('keeps ingest records: their facts cannot be changed and they cannot be deleted', async () => {
    const { rows } = await t.db.pool.query<{ id: string }>("SELECT id FROM strata.ingests WHERE status = 'committed' LIMIT 1");
    for (const sql of [
      `UPDATE strata.ingests SET sha256 = repeat('0', 64) WHERE id = ${rows[0].id}`,
      `UPDATE strata.ingests SET status = 'rejected' WHERE id = ${rows[0].id}`,
      `DELETE FROM strata.ingests WHERE id = ${rows[0].id}`,
      'TRUNCATE strata.ingests CASCADE',
    ]) {
      await expect(t.db.pool.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
  });

  it('numbers entries without gaps under concurrent acts, including failed ones', async () => {
    const { log, lines } = capturingLogger();
    t.deps.log = log;
    const before = (await auditHead(t.db.pool))?.seq ?? 0;
    type Answer = { act: string; status: number; body: Record<string, unknown> };
    const work: Promise<Answer>[] = [];
    for (let i = 0; i < 6; i++) {
      work.push(upload(t, 'audited', { start: 1_709_251_200_000_000n + BigInt(i) * 86_400_000_000n })
        .then((u) => ({ act: `upload ${i}`, status: u.status, body: u.body })));
    }
    for (let i = 0; i < 3; i++) {
      work.push(t.request('/v1/streams/audited/ingest', {
        method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: Buffer.from([0x0a, 0x00, 0xff, 0x13, i]),
      }).then(async (r) => ({ act: `junk ${i}`, status: r.status, body: await r.json() as Record<string, unknown> })));
    }
    // An act that fails after appending: its entry goes with its transaction.
    const rolledBack = withTransaction(t.db, async (tx) => {
      await appendAudit(tx, systemActor, 'test.rolled_back', 'test', {});
      throw new Error('fails after appending');
    }).catch(() => undefined);
    const answers = await Promise.all(work);
    await rolledBack;
    // Every act's answer, so that a failure says what each was told and which entry is missing.
    const told = JSON.stringify({
      answers: answers.map((a) => ({ act: a.act, status: a.status, code: a.body.code, detail: a.body.detail })),
      log: lines.filter((l) => (l.level as number) >= 40),
    });
    for (const a of answers) {
      if (a.act.startsWith('upload')) expect(a.status, told).toBe(201);
      else expect([a.status, a.body.code], told).toEqual([400, 'malformed_arrow']);
    }
    const ingestIds = answers.map((a) => String((a.body.ingest as { id?: string } | undefined)?.id ?? a.body.ingest_id));
    const { entries: after } = await entries(t, `?after=${before}&limit=1000`);
    const listed = JSON.stringify(after.map((e) => [e.seq, e.action, e.subject]));
    expect(after.map((e) => e.subject).sort(), `${listed} for ${told}`).toEqual(ingestIds.map((id) => `ingest:${id}`).sort());
    expect(after.filter((e) => e.action === 'ingest.commit').length, listed).toBe(6);
    expect(after.filter((e) => e.action === 'ingest.reject').length, listed).toBe(3);
    expect(after.map((e) => e.seq)).toEqual(after.map((_, i) => before + i + 1));
    expect((await verify(t)).ok).toBe(true);
  });
});

describe('refusals whose record the database refuses', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    await committed(t, 'contended');
    await committed(t, 'unrecordable');
    // Faults injected where the rejected record is written: a deadlock for the first two tries of
    // stream "contended", an error that does not pass for "unrecordable", and a lost session for "gone".
    await t.db.pool.query(`CREATE SEQUENCE public.record_faults;
      CREATE FUNCTION public.fail_rejected_record() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.status = 'rejected' AND NEW.stream_name = 'contended' AND nextval('public.record_faults') <= 2 THEN
          RAISE EXCEPTION 'deadlock detected (injected)' USING ERRCODE = '40P01';
        END IF;
        IF NEW.status = 'rejected' AND NEW.stream_name = 'unrecordable' THEN RAISE EXCEPTION 'no space left (injected)' USING ERRCODE = '53100'; END IF;
        IF NEW.status = 'rejected' AND NEW.stream_name = 'gone' THEN
          RAISE EXCEPTION 'terminating connection due to administrator command (injected)' USING ERRCODE = '57P01';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_rejected_record BEFORE INSERT ON strata.ingests FOR EACH ROW EXECUTE FUNCTION public.fail_rejected_record();`);
  });
  afterAll(async () => { await t.close(); });

  const junk = { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: Buffer.from('0a00ff13c7e2f00e9d', 'hex') };

  it('retries a record that lost a deadlock: the refusal is recorded and audited once', async () => {
    const res = await t.request('/v1/streams/contended/ingest', junk);
    const body = await res.json() as { code: string; ingest_id: string };
    expect([res.status, body.code]).toEqual([400, 'malformed_arrow']);
    const { rows } = await t.db.pool.query('SELECT status, error_code FROM strata.ingests WHERE id = $1', [body.ingest_id]);
    expect(rows).toEqual([{ status: 'rejected', error_code: 'malformed_arrow' }]);
    expect((await entries(t, `?subject=ingest:${body.ingest_id}`)).entries.map((e) => e.action)).toEqual(['ingest.reject']);
  });

  it('logs a record that cannot be written, with the ingest id and the refusal', async () => {
    const { log, lines } = capturingLogger();
    t.deps.log = log;
    const res = await t.request('/v1/streams/unrecordable/ingest', junk);
    const body = await res.json() as { code: string; ingest_id: string };
    expect([res.status, body.code]).toEqual([400, 'malformed_arrow']);
    expect(lines.find((l) => l.msg === 'refused upload could not be recorded as a rejected ingest')).toMatchObject({
      level: 50, ingest: body.ingest_id, stream: 'unrecordable', code: 'malformed_arrow', err: { message: 'no space left (injected)' },
    });
    expect((await t.db.pool.query('SELECT 1 FROM strata.ingests WHERE id = $1', [body.ingest_id])).rows).toEqual([]);
  });

  it('keeps a refusal made before the upload began (no claim yet) for when PostgreSQL answers again', async () => {
    const { log, lines } = capturingLogger();
    t.deps.log = log;
    const res = await t.request('/v1/streams/gone/ingest?create=false', junk);
    const body = await res.json() as { code: string; ingest_id: string };
    expect([res.status, body.code]).toEqual([404, 'stream_not_found']);
    expect(lines.find((l) => l.msg === 'refused upload kept to be recorded when PostgreSQL answers again')).toMatchObject({ ingest: body.ingest_id });
    await t.db.pool.query('DROP TRIGGER fail_rejected_record ON strata.ingests');
    const settled = await recordUnrecorded(t.config.spoolDir, t.db);
    expect(settled.recorded).toEqual([body.ingest_id]);
    const { rows } = await t.db.pool.query('SELECT status, error_code FROM strata.ingests WHERE id = $1', [body.ingest_id]);
    expect(rows).toEqual([{ status: 'rejected', error_code: 'stream_not_found' }]);
    expect((await entries(t, `?subject=ingest:${body.ingest_id}`)).entries.map((e) => e.action)).toEqual(['ingest.reject']);
  });
});

describe('tampering', () => {
  async function asSuperuser(t: TestApp, sql: string, params: unknown[] = []): Promise<void> {
    await t.db.pool.query('ALTER TABLE strata.audit_log DISABLE TRIGGER audit_log_no_update');
    try {
      await t.db.pool.query(sql, params);
    } finally {
      await t.db.pool.query('ALTER TABLE strata.audit_log ENABLE ALWAYS TRIGGER audit_log_no_update');
    }
  }

  it('names the entry whose details were changed — through the API, the CLI and the job', async () => {
    const t = await populated();
    try {
      const target = (await entries(t, '?action=key.revoke')).entries[0];
      await asSuperuser(t, `UPDATE strata.audit_log SET details = jsonb_set(details, '{name}', '"someone else"') WHERE seq = $1`, [target.seq]);
      const result = await verify(t);
      expect(result).toMatchObject({ ok: false, first_bad: target.seq });
      expect(String(result.reason)).toContain(`entry ${target.seq} was altered`);

      const cli = await runCli(t, ['audit', 'verify']);
      expect(cli.code, cli.stderr).toBe(1);
      expect(JSON.parse(cli.stdout)).toMatchObject({ ok: false, first_bad: target.seq });

      const { log, lines } = capturingLogger();
      const job = registeredJob(AUDIT_VERIFY_JOB);
      expect(job?.defaultIntervalMs).toBe(86_400_000);
      const ctx = { db: t.db, config: t.config, log, now: () => new Date(), signal: new AbortController().signal, runId: null };
      await expect(job?.run(ctx)).rejects.toThrow(`entry ${target.seq}`);
      expect(lines.find((l) => l.msg === 'audit chain BROKEN')).toMatchObject({ audit_first_bad: target.seq });
    } finally {
      await t.close();
    }
  });

  it('names the gap a deleted entry leaves', async () => {
    const t = await populated();
    try {
      const target = (await entries(t, '?action=ingest.commit')).entries[1];
      await asSuperuser(t, 'DELETE FROM strata.audit_log WHERE seq = $1', [target.seq]);
      const result = await verify(t);
      expect(result).toMatchObject({ ok: false, first_bad: target.seq });
      expect(String(result.reason)).toContain(`entry ${target.seq} is missing`);
    } finally {
      await t.close();
    }
  });

  it('catches a rewrite of the whole chain against the head an outside copy holds', async () => {
    const t = await populated();
    try {
      const { log, lines } = capturingLogger();
      t.deps.log = log;
      const first = await verify(t);
      const logged = lines.find((l) => l.msg === 'audit chain verified') as { audit_head: string; audit_entries: number };
      expect(logged.audit_head).toBe(first.head);
      // Rewrite entry 3 and recompute every hash after it, as an intruder with the code would.
      const { rows } = await t.db.pool.query('SELECT * FROM strata.audit_log ORDER BY seq');
      let prev = rows[1].hash as string;
      await t.db.pool.query('ALTER TABLE strata.audit_log DISABLE TRIGGER audit_log_no_update');
      for (const r of rows.slice(2)) {
        const details = r.seq === '3' ? { ...r.details, forged: true } : r.details;
        const content = { seq: Number(r.seq), at: (r.at as Date).toISOString(), actor_key_id: r.actor_key_id === null ? null : Number(r.actor_key_id),
          actor_role: r.actor_role, action: r.action, subject: r.subject, details };
        const hash = entryHash(prev, content);
        await t.db.pool.query('UPDATE strata.audit_log SET details = $2, prev_hash = $3, hash = $4 WHERE seq = $1', [r.seq, details, prev, hash]);
        prev = hash;
      }
      await t.db.pool.query('ALTER TABLE strata.audit_log ENABLE ALWAYS TRIGGER audit_log_no_update');
      expect((await verify(t)).ok).toBe(true);
      const caught = await verify(t, `?expect=${logged.audit_entries}:${logged.audit_head}`);
      expect(caught).toMatchObject({ ok: false, first_bad: logged.audit_entries });
      const cli = await runCli(t, ['audit', 'verify', '--expect', `${logged.audit_entries}:${logged.audit_head}`]);
      expect(cli.code, cli.stderr).toBe(1);
      const ok = await runCli(t, ['audit', 'verify']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toEqual({ ok: true, entries: logged.audit_entries, head: prev });
      expect(ok.stderr).toContain(prev);
    } finally {
      await t.close();
    }
  });
});
