/**
 * `ssokit completion bash|zsh|fish`: each script is loaded into the real shell and asked to
 * complete command lines, as a user pressing Tab would.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'

import { COMMANDS } from '../src/commands.js'

const run = promisify(execFile)
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const ZSH_COMPLETE = fileURLToPath(new URL('fixtures/zsh-complete.zsh', import.meta.url))

async function ssokit(args: string[]) {
  return run(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, ...args])
}

let dir: string
const scripts: Record<string, string> = {}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssokit-completion-'))
  for (const shell of ['bash', 'zsh', 'fish']) {
    const { stdout } = await ssokit(['completion', shell])
    scripts[shell] = join(dir, `ssokit.${shell}`)
    await writeFile(scripts[shell], stdout)
  }
  await writeFile(join(dir, 'secret.txt'), 'x\n')
})
after(() => rm(dir, { recursive: true, force: true }))

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '')
}

/** COMPREPLY of the bash script for `words`, the last one being completed. */
async function bashComplete(script: string, ...commandLines: string[][]): Promise<string[][]> {
  const calls = commandLines.map((words) => {
    const quoted = words.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(' ')
    return `COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _ssokit; printf '%s\\n' "\${COMPREPLY[@]}"; echo '<end>'`
  })
  const { stdout } = await run('bash', [
    '--norc',
    '--noprofile',
    '-c',
    `source '${script}' && ${calls.join('; ')}`,
  ])
  return stdout
    .split('<end>\n')
    .slice(0, commandLines.length)
    .map((chunk) => lines(chunk))
}

describe('ssokit completion', () => {
  it('has --help with the install line of each shell', async () => {
    const { stdout } = await ssokit(['completion', '--help'])
    for (const shell of ['bash', 'zsh', 'fish']) {
      assert.match(stdout, new RegExp(`Examples:\\n[\\s\\S]*ssokit completion ${shell} > `))
    }
  })

  it('refuses a missing or unknown shell with status 2', async () => {
    for (const args of [['completion'], ['completion', 'tcsh']]) {
      await assert.rejects(ssokit(args), (error: { code?: number; stderr?: string }) => {
        assert.equal(error.code, 2)
        assert.match(error.stderr ?? '', /bash, zsh or fish/)
        return true
      })
    }
  })

  it('bash: registers _ssokit and completes commands, options, files and choices', async () => {
    const { stdout } = await run('bash', [
      '--norc',
      '--noprofile',
      '-c',
      `source '${scripts.bash}' && complete -p ssokit`,
    ])
    assert.equal(stdout.trim(), 'complete -F _ssokit ssokit')
    const [command, options, none, file, fileAfterEquals, choice, shells, top] = await bashComplete(
      scripts.bash ?? '',
      ['ssokit', 'to'],
      ['ssokit', 'token', '--cl'],
      ['ssokit', 'token', '--client-id', ''],
      ['ssokit', 'token', '--client-secret-file', join(dir, 'sec')],
      ['ssokit', 'token', '--client-secret-file', '=', join(dir, 'sec')],
      ['ssokit', 'idp', '--token-style', 'r'],
      ['ssokit', 'completion', ''],
      ['ssokit', '--v'],
    )
    assert.deepEqual(command, ['token'])
    assert.deepEqual(options, ['--client-id', '--client-secret-file', '--client-secret-stdin'])
    // After an option that takes a value nothing can guess, no option is offered in its place.
    assert.deepEqual(none, [])
    assert.deepEqual(file, [join(dir, 'secret.txt')])
    assert.deepEqual(fileAfterEquals, [join(dir, 'secret.txt')])
    assert.deepEqual(choice, ['rfc9068'])
    assert.deepEqual(shells, ['bash', 'zsh', 'fish'])
    assert.deepEqual(top, ['--version'])
  })

  it('bash: offers every option of every command, from the option table the command parses', async () => {
    const names = Object.keys(COMMANDS)
    const replies = await bashComplete(
      scripts.bash ?? '',
      ['ssokit', ''],
      ...names.map((name) => ['ssokit', name, '--']),
    )
    assert.deepEqual(replies[0], [...names, '--help', '--version'])
    for (const [i, name] of names.entries()) {
      const entry = COMMANDS[name]
      assert.ok(entry)
      const { command } = await entry.load()
      const expected = [...Object.keys(command.options).map((o) => `--${o}`), '--help']
      assert.deepEqual(replies[i + 1], expected, name)
    }
  })

  it('zsh: completes commands, options, files and choices in an interactive zsh', async () => {
    const complete = async (line: string) =>
      lines(
        // A bound, so a completion that never finishes fails the test instead of hanging it.
        (await run('zsh', ['-f', ZSH_COMPLETE, scripts.zsh ?? '', line], { timeout: 60_000 }))
          .stdout,
      )
    assert.deepEqual(await complete('ssokit to'), ['token'])
    assert.deepEqual(await complete('ssokit token --cl'), [
      '--client-id',
      '--client-secret-file',
      '--client-secret-stdin',
    ])
    assert.deepEqual(await complete('ssokit idp --token-style '), ['keycloak', 'rfc9068'])
    assert.deepEqual(await complete('ssokit completion '), ['bash', 'fish', 'zsh'])
    assert.deepEqual(await complete(`ssokit token --client-secret-file ${dir}/sec`), ['secret.txt'])
    assert.deepEqual(await complete('ssokit token --client-id '), [])
  })

  it('fish: completes commands with their summaries, options, files and choices', async () => {
    const complete = async (line: string) =>
      lines(
        (
          await run('fish', [
            '--no-config',
            '-c',
            `source '${scripts.fish}'; complete -C '${line}'`,
          ])
        ).stdout,
      )
    assert.deepEqual(await complete('ssokit to'), [`token\t${COMMANDS.token?.summary ?? ''}`])
    assert.deepEqual(
      (await complete('ssokit token --cl')).map((l) => l.split('\t')[0]),
      ['--client-id', '--client-secret-file', '--client-secret-stdin'],
    )
    assert.deepEqual(
      (await complete('ssokit idp --token-style ')).map((l) => l.split('\t')[0]),
      ['keycloak', 'rfc9068'],
    )
    assert.deepEqual(await complete('ssokit completion '), ['bash', 'fish', 'zsh'])
    assert.deepEqual(await complete(`ssokit token --client-secret-file ${dir}/sec`), [
      join(dir, 'secret.txt'),
    ])
    assert.deepEqual(await complete('ssokit token --client-id '), [])
  })
})
