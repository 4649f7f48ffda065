/**
 * The `ssokit` binary. The only place that prints errors and sets the exit status; commands
 * throw and return.
 */
import { readFileSync } from 'node:fs'
import { COMMANDS } from './commands.js'
import { UsageError } from './errors.js'

// A reader that went away (`ssokit idp | head -1`) is an ordinary way to stop, not a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    process.exit(error.code === 'EPIPE' ? 0 : 1)
  })
}

/** The version of this package; package.json sits one folder above both src/ and dist/. */
function version(): string {
  const manifest: unknown = JSON.parse(
    readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
  )
  const value =
    typeof manifest === 'object' && manifest !== null && 'version' in manifest
      ? manifest.version
      : undefined
  return typeof value === 'string' ? value : 'unknown'
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length))
  const lines = Object.entries(COMMANDS).map(
    ([name, entry]) => `  ${name.padEnd(width)}  ${entry.summary}`,
  )
  return [
    'Usage: ssokit <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `ssokit <command> --help` for the options of a command,',
    '`ssokit --version` for the version.',
  ].join('\n')
}

/**
 * Resolves on the first Ctrl-C or SIGTERM; a second one ends the process at once. The handlers
 * stay installed: a library's exit hook (proper-lockfile's) re-sends a signal that it sees no
 * other listener for, which would kill the process before the command has stopped cleanly.
 */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143)
      stopping = true
      resolve(signal)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined) {
    // Not asked for: the usage goes with the errors, so `ssokit | less` shows nothing odd.
    console.error(usage())
    return 2
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage())
    return 0
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(version())
    return 0
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (!entry) throw new UsageError(`unknown command "${name}"`)
  const { command } = await entry.load()
  if (args.includes('--help') || args.includes('-h')) {
    console.log(command.help)
    return 0
  }
  return (
    (await command.run(args, {
      out: (line) => {
        console.log(line)
      },
      stopped: stopSignal(),
    })) ?? 0
  )
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`ssokit: ${error.message}`)
    console.error(
      error.command === undefined
        ? 'Run `ssokit --help` for the list of commands.'
        : `Run \`ssokit ${error.command} --help\` for its options.`,
    )
    process.exitCode = 2
  } else {
    console.error(`ssokit: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  }
}
process.exit()
