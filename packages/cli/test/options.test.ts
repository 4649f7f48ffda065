/** The option parser every command shares: one wording for every bad value. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { UsageError } from '../src/errors.js'
import {
  choiceOption,
  flagOption,
  hostOption,
  integerOption,
  nameOption,
  parseOptions,
  pathOption,
  portOption,
  urlOption,
} from '../src/options.js'

const SPEC = {
  port: portOption(),
  host: hostOption(),
  realm: nameOption(),
  ttl: integerOption(1),
  style: choiceOption(['a', 'b']),
  file: pathOption(),
  redis: urlOption(['redis:'], 'redis://127.0.0.1:6379'),
  quiet: flagOption('q'),
}

function usageError(args: string[]): UsageError {
  try {
    parseOptions('thing', args, SPEC)
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error))
    assert.equal(error.command, 'thing')
    return error
  }
  assert.fail(`accepted ${args.join(' ')}`)
}

describe('parseOptions', () => {
  it('converts good values and leaves absent ones undefined', () => {
    const values = parseOptions('thing', ['--port', '0', '--host', '::1', '-q', '--ttl', '5'], SPEC)
    assert.deepEqual(values, { port: 0, host: '::1', quiet: true, ttl: 5 })
    assert.equal(parseOptions('thing', ['--host', '[::1]'], SPEC).host, '::1')
    assert.equal(parseOptions('thing', ['--host', 'localhost'], SPEC).host, 'localhost')
    assert.equal(parseOptions('thing', ['--realm', 'cern.ch'], SPEC).realm, 'cern.ch')
    assert.equal(parseOptions('thing', ['--port', '65535'], SPEC).port, 65535)
  })

  it('names the option, what it must be and the value given', () => {
    const cases: [string[], string][] = [
      [['--port', 'abc'], '--port must be a port number from 0 to 65535, not "abc"'],
      [['--port', '65536'], '--port must be a port number from 0 to 65535, not "65536"'],
      [['--port', '-1'], '--port needs a value'],
      [['--host', '127.0.0.999'], '--host must be an IP address or a host name, not "127.0.0.999"'],
      [['--host', 'a b'], '--host must be an IP address or a host name, not "a b"'],
      [
        ['--realm', 'a b'],
        '--realm must be letters, digits, ".", "_" and "-", starting with a letter or digit, not "a b"',
      ],
      [['--ttl', '0'], '--ttl must be a whole number of at least 1, not "0"'],
      [['--style', 'c'], '--style must be "a" or "b", not "c"'],
      [['--file', ''], '--file must be a path, not ""'],
      [
        ['--redis', 'http://x'],
        '--redis must be a URL such as redis://127.0.0.1:6379, not "http://x"',
      ],
      [['--nope'], 'unknown option --nope'],
      [['word'], 'unexpected argument "word"'],
      [['--port'], '--port needs a value'],
    ]
    for (const [args, message] of cases) assert.equal(usageError(args).message, message)
  })
})
