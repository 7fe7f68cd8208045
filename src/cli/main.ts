// `strata <command> …`: the command line for instrument PCs, notebooks and operators. Finds the
// command, runs it, and turns what it throws into the documented exit codes (command.ts).
import { commands } from './commands/index.ts';
import { CliError, EXIT, UsageError } from './command.ts';
import { CONNECTION_USAGE } from './settings.ts';

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `usage: strata <command> [arguments]   (strata <command> --help for its own help)

${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

${CONNECTION_USAGE}
Exit codes: 0 done, 1 the operation failed (a file refused, a hash that differs), 2 bad argument
or setting, 3 server unavailable after every retry, 130 interrupted.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(`${topic ? (await topic.load()).usage : help()}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`strata: unknown command ${JSON.stringify(name)}\n\n${help()}\n`);
    return EXIT.usage;
  }
  const command = await entry.load();
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`strata ${name}: ${err.message}\n\n${command.usage}\n`);
      return EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`strata ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`strata ${name}: ${(err as Error).message ?? String(err)}\n`);
    return EXIT.failed;
  }
}

process.on('SIGINT', () => process.exit(EXIT.interrupted));
main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`strata: ${String(err)}\n`);
  process.exitCode = EXIT.failed;
});
