import { bashScript } from '../completion/bash.js'
import { fishScript } from '../completion/fish.js'
import { completionTable } from '../completion/table.js'
import { zshScript } from '../completion/zsh.js'
import { UsageError, type Command } from '../errors.js'
import { parseOptions } from '../options.js'

const SHELLS = {
  bash: bashScript,
  zsh: zshScript,
  fish: fishScript,
} as const

const help = `Usage: ssokit completion bash|zsh|fish

Prints the shell completion script for ssokit's commands and options (file names after
options that take a file, the choices of options that have them). Install it once, then start
a new shell; print it again after upgrading ssokit.

Options:
  -h, --help  Show this help

Examples:
  ssokit completion bash > ~/.local/share/bash-completion/completions/ssokit
  source <(ssokit completion bash)        # in ~/.bashrc, without the bash-completion package
  ssokit completion zsh > "\${fpath[1]}/_ssokit"   # a directory in $fpath
  source <(ssokit completion zsh)         # in ~/.zshrc, after compinit
  ssokit completion fish > ~/.config/fish/completions/ssokit.fish`

export const command: Command = {
  help,
  options: {},
  words: Object.keys(SHELLS),
  async run(args, { out }) {
    const [shell, ...rest] = args
    parseOptions('completion', rest, {})
    if (shell === undefined) throw new UsageError('name the shell: bash, zsh or fish', 'completion')
    const script = Object.hasOwn(SHELLS, shell) ? SHELLS[shell as keyof typeof SHELLS] : undefined
    if (script === undefined) {
      throw new UsageError(
        `unknown shell ${JSON.stringify(shell)}: bash, zsh or fish`,
        'completion',
      )
    }
    out(script(await completionTable()).trimEnd())
    return 0
  },
}
