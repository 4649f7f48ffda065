/**
 * The fish completion script: one `complete` line per command and option, conditioned on the
 * command being completed.
 */
import { fishQuote } from './quote.js'
import type { CompletionCommand, CompletionOption } from './table.js'

function optionLine(command: string, option: CompletionOption): string {
  const parts = ['complete -c ssokit', `-n ${fishQuote(`__ssokit_command ${command}`)}`]
  parts.push(`-l ${option.name}`)
  if (option.short !== undefined) parts.push(`-s ${option.short}`)
  if (option.complete === 'file') parts.push('-r -F')
  else if (option.complete !== undefined)
    parts.push(`-x -a ${fishQuote(option.complete.join(' '))}`)
  else if (option.takesValue) parts.push('-x')
  if (option.description !== '') parts.push(`-d ${fishQuote(option.description)}`)
  return parts.join(' ')
}

export function fishScript(commands: readonly CompletionCommand[]): string {
  const lines = commands.flatMap((command) => [
    `complete -c ssokit -n __ssokit_no_command -a ${fishQuote(command.name)} -d ${fishQuote(command.summary)}`,
    ...command.options.map((option) => optionLine(command.name, option)),
    ...(command.words.length === 0
      ? []
      : [
          `complete -c ssokit -n ${fishQuote(`__ssokit_command ${command.name}; and __ssokit_first_argument`)} -a ${fishQuote(command.words.join(' '))}`,
        ]),
  ])
  return `# fish completion for ssokit, made by \`ssokit completion fish\`.
# Install:  ssokit completion fish > ~/.config/fish/completions/ssokit.fish

function __ssokit_no_command
    test (count (commandline -opc)) -eq 1
end

function __ssokit_command
    set -l tokens (commandline -opc)
    test (count $tokens) -ge 2; and test "$tokens[2]" = "$argv[1]"
end

function __ssokit_first_argument
    test (count (commandline -opc)) -eq 2
end

# No file names unless an option takes a file.
complete -c ssokit -f
complete -c ssokit -n __ssokit_no_command -l help -s h -d 'Show the commands'
complete -c ssokit -n __ssokit_no_command -l version -s v -d 'Show the version'
${lines.join('\n')}
`
}
