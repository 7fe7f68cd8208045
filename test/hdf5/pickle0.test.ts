// The strict reader of pandas' pickled column-name lists (values_block_<i>_kind): what pandas
// writes is read, everything else — globals, calls, binary protocols, dicts, nesting — refused.
import { describe, expect, it } from 'vitest';
import { PickleRefused, attributeBytes, readPickledNames } from '../../src/ingest/decoders/hdf5/pickle0.ts';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const names = (s: string): string[] => readPickledNames(bytes(s));

describe('pickled lists of names', () => {
  it('reads what pandas writes (protocol 0 list of str, raw-unicode-escape)', () => {
    expect(names('(lp0\nVflag\np1\na.')).toEqual(['flag']);
    expect(names('(lp0\nVa\np1\naVb c\np2\naV\xe9\np3\na.')).toEqual(['a', 'b c', 'é']);
    expect(names('(lp0\nV\\u4e2d\\u6587\np1\naVa\\u005cb\np2\naV\\U0001f600\np3\na.')).toEqual(['中文', 'a\\b', '😀']);
    expect(names('(lp0\n.')).toEqual([]);
    expect(names('(lp0\nI0\naI12\naL7L\na.')).toEqual(['0', '12', '7']);
    expect(names('(lp0\nVx\np1\nag1\na.')).toEqual(['x', 'x']);
    expect(names('(Va\nVb\ntp0\n.')).toEqual(['a', 'b']);
  });

  it('refuses anything that is not a flat list of names, executing nothing', () => {
    for (const hostile of [
      "cos\nsystem\n(S'touch /tmp/x'\ntR.", // GLOBAL + REDUCE
      '(lp0\ncos\nsystem\np1\na.',
      '\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94\x8c\x01a\x94a.', // protocol 4
      '(dp0\nVa\np1\nI1\ns.', // dict
      '(lp0\n(lp1\nVa\naa.', // nested list
      '(lp0\nVa\np1\na', // no STOP
      '(lp0\nVa\np1\na.junk',
      '(lp0\nVa\nVb\na.', // two items, one APPEND
      '(lp0\ng9\na.', // GET of nothing
      'N.', '(lp0\nVa\\u12\na.', "(lp0\nS'a'\np1\na.", '(lp0\nVa\np1\naR.',
    ]) {
      expect(() => names(hostile), JSON.stringify(hostile)).toThrow(PickleRefused);
    }
  });

  it('attribute text back to its bytes, as h5wasm decodes ASCII attributes (TextDecoder "ascii")', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(Array.from(attributeBytes(new TextDecoder('ascii').decode(all)) ?? [])).toEqual(Array.from(all));
    expect(attributeBytes('中')).toBeNull();
  });
});
