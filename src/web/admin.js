// Admin: jobs (schedule, last runs, health, run now), retention policies and rollup levels per
// stream, legal holds (place, release with a reason) and API keys (create with the secret shown
// once, list, revoke). Each section shows only what the key's role may do.
import { api, post, can } from './api.js';
import { h, clear, field, fmtTime, table, copyButton, askReason, toast, problemText } from './dom.js';

export async function adminPage(root) {
  root.append(h('h1', {}, 'Admin'));
  const sections = [];
  if (can('jobs:read')) sections.push(['Jobs', jobsSection]);
  if (can('streams:read')) sections.push(['Retention and rollups', streamsSection]);
  if (can('holds:read')) sections.push(['Legal holds', holdsSection]);
  if (can('keys:admin')) sections.push(['API keys', keysSection]);
  for (const [title, fn] of sections) {
    const sec = h('section.card', { 'aria-labelledby': `sec-${title.replace(/\W/g, '')}` }, h('h2', { id: `sec-${title.replace(/\W/g, '')}` }, title));
    root.append(sec);
    fn(sec).catch((x) => sec.append(h('p.error', { role: 'alert' }, problemText(x))));
  }
}

async function jobsSection(sec) {
  const body = h('div');
  sec.append(body);
  const runs = h('div');
  const load = async () => {
    const { jobs } = await api('/v1/jobs');
    clear(body, table(['Job', 'Schedule', 'Last run', 'Next run', 'Health', ''], jobs.map((j) => h('tr', { dataset: { job: j.name } },
      h('th', { scope: 'row' }, j.name, j.description ? h('div.muted', {}, j.description) : null),
      h('td', {}, describeSchedule(j.schedule), j.scheduled_here === false ? h('div.muted', {}, 'not scheduled on this server (STRATA_JOBS=off)') : null),
      h('td', {}, j.last_run ? `${fmtTime(j.last_run.started_at)} · ${j.last_run.outcome}` : '—',
        j.last_success_at ? h('div.muted', {}, `last success ${fmtTime(j.last_success_at)}`) : null),
      h('td', {}, fmtTime(j.next_run_at)),
      h('td', {}, j.healthy ? h('span.ok', {}, 'healthy') : h('span.error', {}, `unhealthy${j.health ? `: ${j.health}` : ''}`)),
      h('td', {}, can('jobs:run') ? h('button.small', { type: 'button', onclick: (e) => runNow(j.name, e.target) }, 'Run now') : null)))));
    const { runs: recent } = await api('/v1/jobs/runs?limit=15');
    clear(runs, h('h3', {}, 'Recent runs'), table(['Run', 'Job', 'Stream', 'Trigger', 'Started', 'Took', 'Outcome'], recent.map((r) => h('tr', {},
      h('td.num', {}, r.id), h('td', {}, r.job), h('td', {}, r.stream ?? 'all'), h('td', {}, r.trigger), h('td', {}, fmtTime(r.started_at)),
      h('td.num', {}, r.duration_ms === null ? '—' : `${Math.round(r.duration_ms)} ms`),
      h('td', {}, h(`span.${r.outcome === 'succeeded' ? 'ok' : r.outcome === 'running' ? 'muted' : 'error'}`, {}, r.outcome), r.error ? h('div.error', {}, r.error) : null)))));
  };
  const runNow = async (job, btn) => {
    btn.disabled = true;
    btn.textContent = 'Running…';
    try {
      const r = await post(`/v1/jobs/${encodeURIComponent(job)}/run`);
      toast(`${job}: run #${r.id} ${r.outcome}`);
    } catch (x) {
      toast(`${job}: ${problemText(x)}`);
    }
    await load();
  };
  sec.append(runs);
  await load();
}

function span(msec) {
  const s = msec / 1000;
  if (s < 120) return `${+s.toFixed(1)} s`;
  if (s < 7200) return `${+(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${+(s / 3600).toFixed(1)} h`;
  return `${+(s / 86400).toFixed(1)} d`;
}

function describeSchedule(s) {
  if (!s) return '—';
  return [h('div', {}, `every ${span(s.interval_ms)} (± ${span(s.jitter_ms)}), timeout ${span(s.timeout_ms)}, ${s.retries} retries`),
    h('div.muted', {}, h('small', {}, s.settings))];
}

async function streamsSection(sec) {
  const { streams } = await api('/v1/streams');
  const write = can('streams:write');
  sec.append(h('p.muted', {}, 'Rollup levels and retention as the stream definition holds them (see the manual, "Rollups" and "Retention & holds").'));
  sec.append(table(['Stream', 'Rollup levels', 'Retention', ''], streams.map((s) => {
    const rollups = h('textarea', { rows: 2, spellcheck: 'false', readOnly: !write, 'aria-label': `rollup levels of ${s.name} (JSON)` }, JSON.stringify(s.rollups ?? null));
    const retention = h('textarea', { rows: 2, spellcheck: 'false', readOnly: !write, 'aria-label': `retention of ${s.name} (JSON)` }, JSON.stringify(s.retention ?? null));
    const save = write ? h('button.small', {
      type: 'button',
      onclick: async () => {
        try {
          const patch = { rollups: JSON.parse(rollups.value), retention: JSON.parse(retention.value) };
          await post(`/v1/streams/${encodeURIComponent(s.name)}`, patch, 'PATCH');
          toast(`${s.name}: saved`);
        } catch (x) {
          toast(`${s.name}: ${x instanceof SyntaxError ? `not JSON: ${x.message}` : problemText(x)}`);
        }
      },
    }, 'Save') : null;
    return h('tr', {}, h('th', { scope: 'row' }, s.name), h('td', {}, rollups), h('td', {}, retention), h('td', {}, save));
  })));
}

async function holdsSection(sec) {
  const list = h('div');
  const load = async () => {
    const { holds } = await api('/v1/holds');
    clear(list, holds.length === 0 ? h('p', {}, 'No legal holds.') : table(['Hold', 'Stream', 'From', 'To', 'Reason', 'Placed', 'State', ''], holds.map((x) => h('tr', { dataset: { hold: x.id } },
      h('td.num', {}, x.id), h('td', {}, x.stream), h('td', {}, x.from ? fmtTime(x.from) : 'open'), h('td', {}, x.to ? fmtTime(x.to) : 'open'),
      h('td', {}, x.reason), h('td', {}, fmtTime(x.created_at)),
      h('td', {}, x.active ? h('strong', {}, 'active') : `released ${fmtTime(x.released_at)}: ${x.release_reason ?? ''}`),
      h('td', {}, x.active && can('holds:write') ? h('button.small', {
        type: 'button',
        onclick: async () => {
          const reason = await askReason(`Release hold #${x.id}?`, `Retention may then drop ${x.stream}'s data in that range.`, 'Release');
          if (!reason) return;
          try { await post(`/v1/holds/${x.id}`, { reason }, 'DELETE'); toast(`Hold #${x.id} released`); } catch (e) { toast(problemText(e)); }
          await load();
        },
      }, 'Release') : null)))));
  };
  if (can('holds:write')) {
    const { streams } = await api('/v1/streams');
    const stream = h('select', { required: true }, streams.map((s) => h('option', { value: s.name }, s.name)));
    const from = h('input', { type: 'text', placeholder: 'open', spellcheck: 'false' });
    const to = h('input', { type: 'text', placeholder: 'open', spellcheck: 'false' });
    const reason = h('input', { type: 'text', required: true, maxlength: 4096 });
    sec.append(h('form.controls', {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const held = await post('/v1/holds', { stream: stream.value, reason: reason.value.trim(), ...(from.value.trim() ? { from: from.value.trim() } : {}), ...(to.value.trim() ? { to: to.value.trim() } : {}) });
          toast(`Hold #${held.id} placed`);
          reason.value = '';
          await load();
        } catch (x) {
          toast(problemText(x));
        }
      },
    }, h('div.row', {}, field('Stream', stream), field('From (RFC 3339)', from), field('To (exclusive)', to), field('Reason', reason),
      h('button.primary', { type: 'submit' }, 'Place hold'))));
  }
  sec.append(list);
  await load();
}

async function keysSection(sec) {
  const list = h('div');
  const secret = h('div', { 'aria-live': 'polite' });
  const name = h('input', { type: 'text', required: true, maxlength: 200 });
  const role = h('select', {}, ['reader', 'instrument', 'auditor', 'admin'].map((r) => h('option', { value: r }, r)));
  const streams = h('input', { type: 'text', placeholder: 'all streams', spellcheck: 'false' });
  const load = async () => {
    const { keys } = await api('/v1/keys');
    clear(list, table(['Key', 'Name', 'Role', 'Streams', 'Prefix', 'Created', 'Last used', ''], keys.map((k) => h('tr', { dataset: { key: k.id } },
      h('td.num', {}, k.id), h('td', {}, k.name), h('td', {}, k.role), h('td', {}, k.streams ? k.streams.join(', ') : 'all'),
      h('td', {}, h('code', {}, k.prefix)), h('td', {}, fmtTime(k.created_at)), h('td', {}, fmtTime(k.last_used_at)),
      h('td', {}, k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : h('button.small.danger', {
        type: 'button',
        onclick: async () => {
          if (!window.confirm(`Revoke key #${k.id} "${k.name}"? Requests with it are refused from now on.`)) return;
          try { await post(`/v1/keys/${k.id}`, undefined, 'DELETE'); toast(`Key #${k.id} revoked`); } catch (x) { toast(problemText(x)); }
          await load();
        },
      }, 'Revoke'))))));
  };
  sec.append(h('form.controls', {
    onsubmit: async (e) => {
      e.preventDefault();
      const scope = streams.value.split(',').map((s) => s.trim()).filter(Boolean);
      try {
        const k = await post('/v1/keys', { name: name.value.trim(), role: role.value, ...(scope.length ? { streams: scope } : {}) });
        clear(secret, h('div.card.secret', { role: 'alert' },
          h('p', {}, h('strong', {}, `Key #${k.id} "${k.name}" (${k.role}) created.`), ' Its secret is shown this once: store it now.'),
          h('p', {}, h('code.sha', { id: 'new-key-secret' }, k.key), ' ', copyButton(k.key, 'Copy key')),
          h('button.small', { type: 'button', onclick: () => clear(secret) }, 'Done, hide it')));
        name.value = '';
        await load();
      } catch (x) {
        toast(problemText(x));
      }
    },
  }, h('div.row', {}, field('Name', name), field('Role', role), field('Streams (comma-separated)', streams), h('button.primary', { type: 'submit' }, 'Create key'))),
  secret, list);
  await load();
}

