// What PostgreSQL cannot store: the NUL character (in text and jsonb) and, in jsonb, UTF-16
// surrogate halves without their partner (JavaScript strings may hold them; they are not
// Unicode). Client strings are checked with these helpers and refused with a 4xx naming where;
// records of rejected requests are made storable with toStorable, so that a hostile value can
// never turn the record of its own rejection into a 500.

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNPAIRED_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Why a string cannot be stored, or null when it can. */
export function unstorableReason(s: string): string | null {
  if (s.includes('\0')) return 'a NUL character (U+0000)';
  if (UNPAIRED_SURROGATE.test(s)) return 'an unpaired UTF-16 surrogate (not valid Unicode)';
  return null;
}

/**
 * The first string or object key in a JSON-like value that cannot be stored, with its JSON
 * pointer. Iterative, so that a deeply nested value cannot exhaust the stack.
 */
export function findUnstorable(value: unknown): { path: string; reason: string } | null {
  const stack: { v: unknown; path: string }[] = [{ v: value, path: '' }];
  while (stack.length > 0) {
    const { v, path } = stack.pop() as { v: unknown; path: string };
    if (typeof v === 'string') {
      const reason = unstorableReason(v);
      if (reason) return { path: path || '/', reason };
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
        const childPath = `${path}/${pointerToken(k)}`;
        const reason = unstorableReason(k);
        if (reason) return { path: childPath, reason: `a key with ${reason}` };
        stack.push({ v: child, path: childPath });
      }
    }
  }
  return null;
}

function pointerToken(key: string): string {
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  const printable = [...shown].map((ch) => (ch.charCodeAt(0) < 0x20 ? '?' : ch)).join('');
  return printable.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A string with NUL characters and unpaired surrogates replaced by U+FFFD. */
export function storableText(s: string): string {
  return s.replace(/\0/g, '\uFFFD').replace(UNPAIRED_SURROGATES, '\uFFFD');
}

/** A copy of a JSON-like value in which every string and key is storable. */
export function toStorable<T>(value: T): T {
  if (typeof value === 'string') return storableText(value) as T;
  if (Array.isArray(value)) return value.map((v) => toStorable(v)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[storableText(k)] = toStorable(v);
    return out as T;
  }
  return value;
}
