// The README is the manual: every error code a client can receive, every setting the server
// reads and every endpoint it serves is documented there, in reference sections a reader can find.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../../src/errors/codes.ts';
import { openApiDocument } from '../../src/http/openapi.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

/** The text of one `## ` section of the README, without its heading. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) return '';
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start + title.length + 5, end < 0 ? undefined : end);
}

describe('README', () => {
  it('lists every error code with its status', () => {
    const missing = Object.keys(errorCodes).filter((code) => !new RegExp(`^\\| \`${code}\` \\| [0-9]{3}`, 'm').test(readme));
    expect(missing).toEqual([]);
  });

  it('documents every environment setting the server reads', () => {
    const config = readFileSync(path.join(root, 'src/config/index.ts'), 'utf8');
    const names = [...new Set([...config.matchAll(/(?:'|env\.)(STRATA_[A-Z_]+|DATABASE_URL|PORT|HOST)\b/g)].map((m) => m[1]))];
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((n) => !readme.includes(`\`${n}\``))).toEqual([]);
  });

  it('has the reference sections, in order', () => {
    const sections = ['Running', 'Settings', 'Streams', 'Ingest', 'Queries', 'Rollups', 'Retention & holds',
      'Provenance & audit', 'Keys & roles', 'Jobs', 'Endpoints', 'Error codes', 'Metrics', 'Limits', 'Performance', 'Development'];
    const positions = sections.map((s) => readme.indexOf(`\n## ${s}\n`));
    expect(sections.filter((_, i) => positions[i] < 0)).toEqual([]);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it('lists every endpoint the API describes in the Endpoints table', () => {
    const table = section('Endpoints');
    const paths = (openApiDocument('test') as { paths: Record<string, Record<string, unknown>> }).paths;
    const ops = Object.entries(paths).flatMap(([p, methods]) => Object.keys(methods)
      .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m)).map((m) => `${m.toUpperCase()} ${p}`));
    expect(ops.length).toBeGreaterThan(20);
    expect(ops.filter((op) => !['`', '?', '['].some((after) => table.includes(`\`${op}${after}`)))).toEqual([]);
  });

  it('keeps the current performance figures in one table', () => {
    const perf = section('Performance');
    expect(perf.match(/^\|---/gm)?.length).toBe(1);
  });
});
