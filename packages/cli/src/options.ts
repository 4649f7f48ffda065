/**
 * Command-line options shared by every `ssokit` command: one parser and one set of value checks,
 * so a bad value gets the same wording and exit status (2) whichever command it was given to.
 *
 *   const values = parseOptions('idp', args, { port: portOption(), realm: nameOption() })
 *   values.port // number | undefined
 */
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { UsageError } from './errors.js'

/** An option that takes a value, checked and converted by `parse`. */
export interface ValueOption<T> {
  readonly kind: 'value'
  readonly short?: string
  /** Converts the raw text; throws `InvalidValue` with what the value must be. */
  readonly parse: (raw: string) => T
  /** What shell completion offers for the value: file names, or a fixed set of words. */
  readonly complete?: 'file' | readonly string[]
}

/** An option without a value (`--rotate-keys`). */
export interface FlagOption {
  readonly kind: 'flag'
  readonly short?: string
}

export type OptionSpec = Readonly<Record<string, ValueOption<unknown> | FlagOption>>

export type ParsedOptions<S extends OptionSpec> = {
  -readonly [K in keyof S]?: S[K] extends ValueOption<infer T> ? T : boolean
}

/** Thrown by a value check: `expected` completes the sentence "--flag must be ...". */
export class InvalidValue extends Error {
  override readonly name = 'InvalidValue'
  constructor(readonly expected: string) {
    super(`must be ${expected}`)
  }
}

/** The one wording of a bad value, for checks made after parsing (two options that clash). */
export function invalidOption(
  command: string,
  flag: string,
  raw: string,
  expected: string,
): UsageError {
  return new UsageError(`${flag} must be ${expected}, not ${JSON.stringify(raw)}`, command)
}

function parseFailure(command: string, error: unknown): UsageError {
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined
  const message = error instanceof Error ? error.message : String(error)
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1]
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${flag ?? message}`, command)
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new UsageError(
        /ambiguous|missing/.test(message) && flag !== undefined ? `${flag} needs a value` : message,
        command,
      )
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const word = /'([^']*)'/.exec(message)?.[1]
      return new UsageError(`unexpected argument ${JSON.stringify(word ?? '')}`, command)
    }
    default:
      return new UsageError(message, command)
  }
}

/**
 * Parses `args` for `command` (the name its `--help` hint points at). Unknown options,
 * positional words, missing and bad values all throw a `UsageError`, which `main` turns into
 * the message, a pointer to `--help` and exit status 2.
 */
export function parseOptions<S extends OptionSpec>(
  command: string,
  args: readonly string[],
  spec: S,
): ParsedOptions<S> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {}
  for (const [name, option] of Object.entries(spec)) {
    options[name] = {
      type: option.kind === 'flag' ? 'boolean' : 'string',
      ...(option.short === undefined ? {} : { short: option.short }),
    }
  }
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({ args: [...args], strict: true, allowPositionals: false, options }))
  } catch (error) {
    throw parseFailure(command, error)
  }
  const parsed: Record<string, unknown> = {}
  for (const [name, option] of Object.entries(spec)) {
    const raw = values[name]
    if (raw === undefined) continue
    if (option.kind === 'flag' || typeof raw !== 'string') {
      parsed[name] = raw
      continue
    }
    try {
      parsed[name] = option.parse(raw)
    } catch (error) {
      if (!(error instanceof InvalidValue)) throw error
      throw invalidOption(command, `--${name}`, raw, error.expected)
    }
  }
  return parsed as ParsedOptions<S>
}

export function flagOption(short?: string): FlagOption {
  return short === undefined ? { kind: 'flag' } : { kind: 'flag', short }
}

/** A TCP port, 0 meaning any free one. */
export function portOption(): ValueOption<number> {
  return {
    kind: 'value',
    parse(raw) {
      if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
        throw new InvalidValue('a port number from 0 to 65535')
      }
      return Number(raw)
    },
  }
}

const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/

/** An IP address or a host name to listen on or connect to. */
export function hostOption(): ValueOption<string> {
  return {
    kind: 'value',
    parse(raw) {
      const bare = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw
      if (isIP(bare) !== 0) return bare
      // All digits and dots but not an IPv4 address (127.0.0.999) is a typo, not a host name.
      const name =
        !/^[\d.]+$/.test(bare) &&
        bare.length <= 253 &&
        bare.split('.').every((l) => HOST_LABEL.test(l))
      if (!name) throw new InvalidValue('an IP address or a host name')
      return bare
    },
  }
}

/** A whole number of at least `min` (seconds, counts). */
export function integerOption(min: number, max = Number.MAX_SAFE_INTEGER): ValueOption<number> {
  return {
    kind: 'value',
    parse(raw) {
      if (!/^\d{1,15}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
        throw new InvalidValue(
          max === Number.MAX_SAFE_INTEGER
            ? `a whole number of at least ${min}`
            : `a whole number from ${min} to ${max}`,
        )
      }
      return Number(raw)
    },
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

/** A realm, client or user name: letters, digits, ".", "_" and "-", not starting with a sign. */
export function nameOption(): ValueOption<string> {
  return {
    kind: 'value',
    parse(raw) {
      if (!NAME.test(raw) || raw.length > 255) {
        throw new InvalidValue('letters, digits, ".", "_" and "-", starting with a letter or digit')
      }
      return raw
    },
  }
}

/** One of a fixed set of words. */
export function choiceOption<const T extends string>(choices: readonly T[]): ValueOption<T> {
  return {
    kind: 'value',
    complete: choices,
    parse(raw) {
      const found = choices.find((choice) => choice === raw)
      if (found === undefined) {
        const list = choices.map((c) => JSON.stringify(c))
        throw new InvalidValue(
          `${list.slice(0, -1).join(', ')}${list.length > 1 ? ' or ' : ''}${list.at(-1) ?? ''}`,
        )
      }
      return found
    },
  }
}

/** A path to a file or folder; only emptiness is checked here, the command reports the rest. */
export function pathOption(): ValueOption<string> {
  return {
    kind: 'value',
    complete: 'file',
    parse(raw) {
      if (raw === '') throw new InvalidValue('a path')
      return raw
    },
  }
}

/** An absolute URL with one of `protocols` (`['redis:', 'rediss:']`). */
export function urlOption(protocols: readonly string[], example: string): ValueOption<string> {
  return {
    kind: 'value',
    parse(raw) {
      let url: URL | undefined
      try {
        url = new URL(raw)
      } catch {
        url = undefined
      }
      if (url === undefined || !protocols.includes(url.protocol)) {
        throw new InvalidValue(`a URL such as ${example}`)
      }
      return raw
    },
  }
}
