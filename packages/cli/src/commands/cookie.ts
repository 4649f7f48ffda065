import { resolve } from 'node:path'

import {
  cookieSession,
  kerberos,
  readCookieFile,
  writeCookieFile,
  type CookieFile,
} from '@ssokit/client'

import { PROVIDER_OPTIONS, providerChoice } from '../client-options.js'
import { rememberCookieFile } from '../cookie-files.js'
import { UsageError, type Command } from '../errors.js'
import { KERBEROS_HELP, KERBEROS_OPTIONS, kerberosOptions } from '../kerberos-options.js'
import { flagOption, parseOptions, pathOption, urlOption } from '../options.js'

const help = `Usage: ssokit cookie <url> (--issuer <url> | --cern) [-o cookies.txt] [options]

Signs in to a cookie-protected site through the single sign-on with your Kerberos ticket and
writes its cookies, with the provider's, to a Netscape cookie file that curl -b, wget and
Python's MozillaCookieJar read. The file is 0600 and names whose cookies they are; it is never
written over another principal's file without --force.

Run it again for another site with the same file: the provider's session in it signs you in
there without Kerberos. An existing file's cookies are used first, so a site whose session is
still valid is not signed in again.

Options:
  -o, --output <file>         The cookie file (default: cookies.txt)
  --issuer <url>              The SSO provider's issuer URL (default: OIDC_ISSUER); only it
                              is sent Kerberos tokens
  --cern                      CERN SSO: https://auth.cern.ch/auth/realms/cern
  --force                     Start afresh and replace a file of another principal
  --json                      Print {"file", "url", "status", "owner", "kerberos", "cookies"}
  -h, --help                  Show this help

${KERBEROS_HELP}

Examples:
  kinit you@CERN.CH
  ssokit cookie https://my-app.web.cern.ch/ --cern -o ~/.cern-cookies.txt
  curl -b ~/.cern-cookies.txt https://my-app.web.cern.ch/api/items`

const OPTIONS = {
  output: { ...pathOption(), short: 'o' },
  url: urlOption(['https:', 'http:'], 'https://app.example.org/'),
  force: flagOption(),
  json: flagOption(),
  ...KERBEROS_OPTIONS,
  ...PROVIDER_OPTIONS,
}

async function existing(file: string, force: boolean) {
  if (force) return undefined
  try {
    return await readCookieFile(file)
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined
    throw error
  }
}

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out }) {
    const positional = args[0] !== undefined && !args[0].startsWith('-') ? args[0] : undefined
    const values = parseOptions('cookie', positional === undefined ? args : args.slice(1), OPTIONS)
    if (positional !== undefined && values.url !== undefined) {
      throw new UsageError('give the URL once: as the argument or as --url', 'cookie')
    }
    const raw = positional ?? values.url
    if (raw === undefined) throw new UsageError('the URL of the site is required', 'cookie')
    if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) {
      throw new UsageError(`the URL must be an http(s) URL, not ${JSON.stringify(raw)}`, 'cookie')
    }
    const provider = providerChoice('cookie', values)
    const file = resolve(values.output ?? 'cookies.txt')
    const force = values.force === true
    const krb = kerberosOptions('cookie', values)
    const before = await existing(file, force)
    const jar: CookieFile['jar'] | undefined = before?.jar
    const session = await cookieSession(raw, {
      ...provider,
      login: kerberos(krb),
      ...(jar === undefined ? {} : { jar }),
    })
    const owner = session.principal ?? krb.principal ?? before?.owner
    await writeCookieFile(file, session.jar, { owner, force })
    await rememberCookieFile(file)
    const cookies = (await session.cookies()).length
    if (values.json === true) {
      out(
        JSON.stringify({
          file,
          url: session.url,
          status: session.status,
          owner: owner ?? null,
          kerberos: session.kerberosUsed,
          cookies,
        }),
      )
    } else {
      out(
        `Wrote ${cookies} cookies for ${owner ?? 'you'} to ${file} (${session.kerberosUsed ? 'signed in with Kerberos' : 'signed in with the saved session'}; ${new URL(session.url).host} answered ${session.status}).`,
      )
    }
    if (session.status >= 400) {
      throw new Error(
        `signed in, but ${session.url} answered ${session.status}: the cookies were written, the page was not allowed`,
      )
    }
    return 0
  },
}
