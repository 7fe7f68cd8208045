// Argument parsing for the commands: node:util's parseArgs in strict mode, its errors reworded so
// that a bad argument names itself.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './command.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export function parse(args: string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    const msg = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(msg);
  }
}

export const str = (p: Parsed, name: string): string | undefined => p.values[name] as string | undefined;
export const list = (p: Parsed, name: string): string[] => (p.values[name] as string[] | undefined) ?? [];
export const flag = (p: Parsed, name: string): boolean => p.values[name] === true;

/** A positive number of seconds (fractions allowed), or the default. */
export function seconds(p: Parsed, name: string, dflt: number): number {
  const v = str(p, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} needs a number of seconds, got ${JSON.stringify(v)}`);
  return n;
}

export function count(p: Parsed, name: string, dflt: number): number {
  const v = str(p, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name} needs a whole number, got ${JSON.stringify(v)}`);
  return n;
}

/** `k=v` pairs of --tag, checked. */
export function tags(p: Parsed): [string, string][] {
  return list(p, 'tag').map((t) => {
    const i = t.indexOf('=');
    if (i <= 0 || i === t.length - 1) throw new UsageError(`--tag needs name=value, got ${JSON.stringify(t)}`);
    return [t.slice(0, i), t.slice(i + 1)];
  });
}
