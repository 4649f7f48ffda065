import type { OptionSpec } from './options.js'

/** Bad command line: main prints the message and the usage hint, and exits with status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
  constructor(
    message: string,
    /** The command whose `--help` to point at, if any. */
    readonly command?: string,
  ) {
    super(message)
  }
}

/** Where a command writes its ordinary output. Only `main` writes errors. */
export interface CommandContext {
  readonly out: (line: string) => void
  /** Resolves when the user asks the process to stop (Ctrl-C, SIGTERM). */
  readonly stopped: Promise<string>
}

export interface Command {
  /** Usage text printed by `ssokit <command> --help`. */
  readonly help: string
  /** The options `run` parses, also the source of the shell completion scripts. */
  readonly options: OptionSpec
  /** The words the first argument may be, for shell completion (`completion bash`). */
  readonly words?: readonly string[]
  /** Runs the command; resolves with the exit status (0 when omitted). */
  run(args: readonly string[], context: CommandContext): Promise<number | undefined>
}
