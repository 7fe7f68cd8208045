// The README is the manual: every error code a client can receive and every setting the server
// reads is documented there.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../../src/errors/codes.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

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
});
