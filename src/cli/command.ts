// One command of the `strata` command line: src/cli/commands/<name>.ts exports one of these.
export interface CliCommand {
  name: string;
  /** One line for the list of commands. */
  summary: string;
  /** The command's full usage text. */
  usage: string;
  /** Runs with the arguments after the command's name; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}
