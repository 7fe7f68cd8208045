// Flags of the form --name value, --name=value and --switch, checked against what a command knows.
import { UsageError } from './command.ts';
/** A bad flag: main.ts prints it with the command's usage and exits with EXIT.usage (2). */
export class FlagError extends UsageError {}

export function parseFlags(args: string[], valued: string[], switches: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(args[i]);
    if (!m) throw new FlagError(`unexpected argument ${JSON.stringify(args[i])}`);
    const [, name, inline] = m;
    if (switches.includes(name) && inline === undefined) { out.set(name, 'true'); continue; }
    if (!valued.includes(name)) throw new FlagError(`unknown option --${name}`);
    const value = inline ?? args[++i];
    if (value === undefined || value === '') throw new FlagError(`--${name} needs a value`);
    out.set(name, value);
  }
  return out;
}

/** An instant given on the command line: ISO 8601 with a zone (Z or ±hh:mm). */
export function parseInstant(flag: string, raw: string): Date {
  if (!/(Z|[+-]\d\d:?\d\d)$/i.test(raw.trim()) || Number.isNaN(Date.parse(raw))) {
    throw new FlagError(`--${flag} needs an ISO 8601 time with its zone, such as 2026-03-01T12:00:00Z; got ${JSON.stringify(raw)}`);
  }
  return new Date(raw);
}
