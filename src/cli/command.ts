// What every `strata` command is: a name, its usage text, and a run function that returns the
// exit code (its one-line summary is in commands/index.ts). Errors thrown by run() are turned into exit codes by main.ts.

export interface CliCommand {
  name: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

/** Exit codes, the same for every command (README: "The strata command"). */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed: a file refused, a hash that differs, a broken audit chain. */
  failed: 1,
  /** A bad argument or setting; nothing was done. */
  usage: 2,
  /** The server could not be reached or kept answering 5xx, after every retry. */
  unavailable: 3,
  /** Interrupted (Ctrl-C). */
  interrupted: 130,
} as const;

/** A bad argument: the message names it; main.ts prints it with the command's usage. */
export class UsageError extends Error {}

/** A refusal explained in one line, without the usage text. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failed) {
    super(message);
  }
}
