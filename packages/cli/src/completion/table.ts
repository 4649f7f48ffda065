/**
 * What the shell completion scripts offer, read from the command table (`commands.ts`) and the
 * option spec each command parses with, so a new command or option is completed without
 * touching the scripts.
 */
import { COMMANDS } from '../commands.js'
import type { Command } from '../errors.js'

export interface CompletionOption {
  /** Without the dashes: `client-id`. */
  readonly name: string
  readonly short?: string
  /** `true` when the option takes a value (`--client-id <id>`). */
  readonly takesValue: boolean
  /** File names, a fixed set of words, or nothing to offer. */
  readonly complete?: 'file' | readonly string[]
  /** The option's line in `--help`, when there is one. */
  readonly description: string
}

export interface CompletionCommand {
  readonly name: string
  readonly summary: string
  readonly options: readonly CompletionOption[]
  /** What the first argument may be (`completion bash`). */
  readonly words: readonly string[]
}

/** `--help` is accepted by every command (main answers it before the command parses). */
const HELP: CompletionOption = {
  name: 'help',
  short: 'h',
  takesValue: false,
  description: 'Show this help',
}

/**
 * The descriptions of a command's options, from the lines of its `--help` that start with
 * them (`  --client-id <id>   The client (application) id`); options without one get none.
 */
export function optionDescriptions(help: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const line of help.split('\n')) {
    const match = /^\s+(-[^\s].*?)\s{2,}(\S.*)$/.exec(line)
    if (match === null) continue
    const [, lead = '', description = ''] = match
    for (const [, name] of lead.matchAll(/--([a-z][a-z0-9-]*)/g)) {
      if (name !== undefined && !found.has(name)) found.set(name, description.trim())
    }
  }
  return found
}

export function describeCommand(
  name: string,
  summary: string,
  command: Command,
): CompletionCommand {
  const descriptions = optionDescriptions(command.help)
  const options: CompletionOption[] = Object.entries(command.options).map(([option, spec]) => ({
    name: option,
    ...(spec.short === undefined ? {} : { short: spec.short }),
    takesValue: spec.kind === 'value',
    ...(spec.kind === 'value' && spec.complete !== undefined ? { complete: spec.complete } : {}),
    description: descriptions.get(option) ?? '',
  }))
  return { name, summary, options: [...options, HELP], words: command.words ?? [] }
}

/** Every command with its options. Loads each command's module (not its work). */
export async function completionTable(): Promise<CompletionCommand[]> {
  return Promise.all(
    Object.entries(COMMANDS).map(async ([name, entry]) =>
      describeCommand(name, entry.summary, (await entry.load()).command),
    ),
  )
}

/** The words completed in place of a command: the commands and the top-level flags. */
export const TOP_LEVEL_FLAGS = ['--help', '--version'] as const
