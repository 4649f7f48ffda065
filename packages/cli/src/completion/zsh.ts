/**
 * The zsh completion script: `_ssokit` with the command table written into `_describe` and
 * `_arguments` specs. Works from `$fpath` (autoloaded as `_ssokit`) and when sourced.
 */
import { shellQuote } from './quote.js'
import { TOP_LEVEL_FLAGS, type CompletionCommand, type CompletionOption } from './table.js'

/** `[`, `]` and `:` are the spec's own punctuation. */
function bracketed(text: string): string {
  return text === '' ? '' : `[${text.replace(/[[\]:\\]/g, (c) => `\\${c}`)}]`
}

function valueAction(option: CompletionOption): string {
  if (option.complete === 'file') return ':file:_files'
  if (option.complete !== undefined) return `:value:(${option.complete.join(' ')})`
  // A value nothing can guess: zsh shows "value" and offers nothing.
  return ':value: '
}

function optionSpecs(option: CompletionOption): string[] {
  const description = bracketed(option.description)
  if (!option.takesValue) {
    return [
      `--${option.name}${description}`,
      ...(option.short === undefined ? [] : [`-${option.short}${description}`]),
    ]
  }
  const action = valueAction(option)
  return [
    `--${option.name}=${description}${action}`,
    ...(option.short === undefined ? [] : [`-${option.short}+${description}${action}`]),
  ]
}

function commandCase(command: CompletionCommand): string {
  const specs = command.options.flatMap(optionSpecs)
  if (command.words.length > 0) specs.push(`1:argument:(${command.words.join(' ')})`)
  return [
    `    (${command.name})`,
    `      _arguments -s -S \\`,
    ...specs.map((spec) => `        ${shellQuote(spec)} \\`),
    `        && return 0`,
    '      ;;',
  ].join('\n')
}

export function zshScript(commands: readonly CompletionCommand[]): string {
  return `#compdef ssokit
# zsh completion for ssokit, made by \`ssokit completion zsh\`.
# Install:  ssokit completion zsh > "\${fpath[1]}/_ssokit"   (a directory in $fpath), then
# start a new zsh; or add to ~/.zshrc after compinit:  source <(ssokit completion zsh)

_ssokit() {
  local -a commands
  commands=(
${commands.map((c) => `    ${shellQuote(`${c.name}:${c.summary}`)}`).join('\n')}
  )
  if ((CURRENT == 2)); then
    if [[ $words[2] == -* ]]; then
      compadd -- ${TOP_LEVEL_FLAGS.join(' ')}
    else
      _describe -t commands 'ssokit command' commands
    fi
    return
  fi
  local command=$words[2]
  # The command's options are completed as if it were the command line on its own.
  shift words
  ((CURRENT--))
  case $command in
${commands.map(commandCase).join('\n')}
  esac
  return 1
}

if [[ $funcstack[1] == _ssokit ]]; then
  _ssokit "$@"
else
  compdef _ssokit ssokit
fi
`
}
