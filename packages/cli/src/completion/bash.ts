/**
 * The bash completion script: one function with the command table written into it as words,
 * so completing asks no `ssokit` process and costs nothing. Works without the bash-completion
 * package, in bash 3.2 (macOS) too.
 */
import { shellQuote } from './quote.js'
import { TOP_LEVEL_FLAGS, type CompletionCommand, type CompletionOption } from './table.js'

/** The spellings a command line may use for an option: `--output`, and `-o` when it has one. */
function spellings(option: CompletionOption): string[] {
  return option.short === undefined
    ? [`--${option.name}`]
    : [`--${option.name}`, `-${option.short}`]
}

/** ` --a --b ` (padded so that `*" $prev "*` matches whole words only). */
function padded(words: readonly string[]): string {
  return shellQuote(` ${words.join(' ')} `)
}

function commandCase(command: CompletionCommand): string {
  const options = command.options.map((o) => `--${o.name}`)
  const values = command.options.filter((o) => o.takesValue).flatMap(spellings)
  const files = command.options.filter((o) => o.complete === 'file').flatMap(spellings)
  return [
    `    ${shellQuote(command.name)})`,
    `      options=${shellQuote(options.join(' '))}`,
    `      values=${padded(values)}`,
    `      files=${padded(files)}`,
    `      words=${shellQuote(command.words.join(' '))}`,
    '      ;;',
  ].join('\n')
}

function choiceCases(commands: readonly CompletionCommand[]): string[] {
  return commands.flatMap((command) =>
    command.options.flatMap((option) => {
      const choices = option.complete
      if (choices === undefined || choices === 'file') return []
      return spellings(option).map(
        (flag) =>
          `    ${shellQuote(`${command.name} ${flag}`)}) _ssokit_reply ${shellQuote(choices.join(' '))}; return 0 ;;`,
      )
    }),
  )
}

export function bashScript(commands: readonly CompletionCommand[]): string {
  const top = [...commands.map((c) => c.name), ...TOP_LEVEL_FLAGS].join(' ')
  return `# bash completion for ssokit, made by \`ssokit completion bash\`.
# Install:  ssokit completion bash > ~/.local/share/bash-completion/completions/ssokit
# or add to ~/.bashrc:  source <(ssokit completion bash)

# The words of $1 that start with the word being completed, one reply each.
_ssokit_reply() {
  local found
  found=$(compgen -W "$1" -- "$cur")
  local IFS=$'\\n'
  COMPREPLY=($found)
}

_ssokit() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev= command=\${COMP_WORDS[1]-}
  local options= values= files= words=
  COMPREPLY=()
  if ((COMP_CWORD > 1)); then prev=\${COMP_WORDS[COMP_CWORD - 1]}; fi
  # bash splits --option=value at "=": complete the value of the option before it.
  if [[ $cur == = ]]; then
    cur=
  elif [[ $prev == = ]] && ((COMP_CWORD > 2)); then
    prev=\${COMP_WORDS[COMP_CWORD - 2]}
  fi
  if ((COMP_CWORD == 1)); then
    _ssokit_reply ${shellQuote(top)}
    return 0
  fi
  case $command in
${commands.map(commandCase).join('\n')}
    *) return 0 ;;
  esac
  case "$command $prev" in
${choiceCases(commands).join('\n')}
  esac
  if [[ $files == *" $prev "* ]]; then
    compopt -o filenames 2>/dev/null
    local IFS=$'\\n'
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  # A value nothing can guess (a client id, a URL): offer no options in its place.
  if [[ $values == *" $prev "* ]]; then return 0; fi
  if [[ -n $words && $cur != -* ]] && ((COMP_CWORD == 2)); then
    _ssokit_reply "$words"
  else
    _ssokit_reply "$options"
  fi
  return 0
}

complete -F _ssokit ssokit
`
}
