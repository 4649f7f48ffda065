/**
 * What `ssokit token`, `status` and `logout` share: the provider (`--issuer` or `--cern`), and
 * the client secret, which is read from a file, the environment or standard input and never
 * taken from the command line, where `ps` and the shell history would show it.
 */
import { readFile, stat } from 'node:fs/promises'

import { UsageError } from './errors.js'
import { flagOption, InvalidValue, pathOption, urlOption, type ValueOption } from './options.js'

/** Environment variables that may hold the client secret, first found wins. */
export const SECRET_VARIABLES = ['SSOKIT_CLIENT_SECRET', 'OIDC_CLIENT_SECRET'] as const

/** Any client id: it is sent to the provider, never used in a path without escaping. */
export function clientIdOption(): ValueOption<string> {
  return {
    kind: 'value',
    parse(raw) {
      if (raw === '' || raw.length > 255 || /[\s\p{Cc}]/u.test(raw)) {
        throw new InvalidValue('a client id without spaces or control characters')
      }
      return raw
    },
  }
}

export const PROVIDER_OPTIONS = {
  issuer: urlOption(['https:', 'http:'], 'https://auth.cern.ch/auth/realms/cern'),
  cern: flagOption(),
}

export const SECRET_OPTIONS = {
  'client-secret-file': pathOption(),
  'client-secret-stdin': flagOption(),
}

/**
 * Refuses `--client-secret` (and `--client-secret=...`) before anything else reads the
 * arguments, without repeating the value (D16).
 */
export function refuseSecretArguments(command: string, args: readonly string[]): void {
  for (const arg of args) {
    if (arg === '--') return
    if (arg === '--client-secret' || arg.startsWith('--client-secret=')) {
      throw new UsageError(
        'a client secret is not accepted on the command line, where ps and the shell history show it: use --client-secret-file, --client-secret-stdin or SSOKIT_CLIENT_SECRET',
        command,
      )
    }
  }
}

/** `{ issuer }` or `{ cern: true }` from the options, else `OIDC_ISSUER`. */
export function providerChoice(
  command: string,
  values: { issuer?: string | undefined; cern?: boolean | undefined },
  env: NodeJS.ProcessEnv = process.env,
): { issuer: string } | { cern: true } {
  if (values.issuer !== undefined && values.cern === true) {
    throw new UsageError('give --issuer or --cern, not both', command)
  }
  if (values.cern === true) return { cern: true }
  const issuer = values.issuer ?? env.OIDC_ISSUER
  if (issuer === undefined || issuer === '') {
    throw new UsageError('--issuer <url> or --cern is required (or set OIDC_ISSUER)', command)
  }
  return { issuer }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** The secret's text without the line end a file or `echo` adds. */
function trimmed(text: string): string {
  return text.replace(/\r?\n$/, '')
}

/**
 * The client secret from `--client-secret-file` (which must not be readable by others),
 * `--client-secret-stdin`, or `SSOKIT_CLIENT_SECRET` / `OIDC_CLIENT_SECRET`; `undefined` when
 * none is given.
 */
export async function readClientSecret(
  command: string,
  values: {
    'client-secret-file'?: string | undefined
    'client-secret-stdin'?: boolean | undefined
  },
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const file = values['client-secret-file']
  if (file !== undefined && values['client-secret-stdin'] === true) {
    throw new UsageError('give --client-secret-file or --client-secret-stdin, not both', command)
  }
  if (file !== undefined) {
    let mode: number
    try {
      mode = (await stat(file)).mode
    } catch {
      throw new UsageError(`--client-secret-file ${JSON.stringify(file)} cannot be read`, command)
    }
    if ((mode & 0o077) !== 0) {
      throw new UsageError(
        `--client-secret-file ${JSON.stringify(file)} is readable by other users: chmod 600 it first`,
        command,
      )
    }
    const secret = trimmed(await readFile(file, 'utf8'))
    if (secret === '')
      throw new UsageError(`--client-secret-file ${JSON.stringify(file)} is empty`, command)
    return secret
  }
  if (values['client-secret-stdin'] === true) {
    const secret = trimmed(await readStdin())
    if (secret === '') throw new UsageError('--client-secret-stdin read an empty secret', command)
    return secret
  }
  for (const name of SECRET_VARIABLES) {
    const value = env[name]
    if (value !== undefined && value !== '') return value
  }
  return undefined
}
