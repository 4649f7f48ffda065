/**
 * SimpleSAMLphp (Debian's 1.19) as a real SAML 2.0 IdP on PHP's built-in server, on a free
 * 127.0.0.1 port, configured in a temporary directory: one hosted IdP (its own key), the
 * exampleauth users below, attribute names sent as OIDs (name2oid), and one remote SP (the one
 * under test) whose AuthnRequests and logout messages must be signed with its certificate.
 * Stopped by its watchdog when the test process ends.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeKeyPair } from '../../packages/saml/test/support.js'
import { exited, freePort, tempDir, WATCHDOG } from './redis.js'

const WWW = '/usr/share/simplesamlphp/www'
const DEFAULT_CONFIG = '/etc/simplesamlphp/config.php'
const PHP = '/usr/bin/php'

export const SSP_USER = { username: 'jdoe', password: 'jdoe-password-1' }

export interface SamlSp {
  readonly entityId: string
  readonly acsUrl: string
  readonly sloUrl: string
  /** PEM certificate of the SP: checks its signatures, encrypts assertions to it. */
  readonly certificate: string
  /** Hosts (host:port) the IdP may send the browser back to after an IdP-initiated logout. */
  readonly trustedHost: string
  /** Whether its AuthnRequests and logout messages are signed (and must be). Default true. */
  readonly signsRequests?: boolean
  /** The binding the IdP sends its LogoutRequest on. Default HTTP-Redirect. */
  readonly sloBinding?: 'HTTP-Redirect' | 'HTTP-POST'
}

export interface RunningSimpleSamlPhp {
  readonly url: string
  readonly entityId: string
  readonly metadataUrl: string
  /** Where an IdP-initiated logout starts; the browser ends at `returnTo`. */
  initSloUrl(returnTo: string): string
  /** The end of the IdP's log, for a failing test's message. */
  log(): string
  stop(): Promise<void>
}

export function requireSimpleSamlPhp(): void {
  if (!existsSync(PHP) || !existsSync(WWW))
    throw new Error(
      'SimpleSAMLphp is not installed; install it with: apt-get install simplesamlphp php-cli php-xml php-mbstring',
    )
  const modules = execFileSync(PHP, ['-m'], { encoding: 'utf8' })
  if (!/^dom$/m.test(modules))
    throw new Error(
      'PHP lacks the DOM extension SimpleSAMLphp needs; install it with: apt-get install php-xml',
    )
}

const php = (value: string): string => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`

function certData(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '')
}

/** One SP's entry in saml20-sp-remote.php. */
function remoteSp(sp: SamlSp): string {
  return `$metadata[${php(sp.entityId)}] = [
    'AssertionConsumerService' => [[
        'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
        'Location' => ${php(sp.acsUrl)},
    ]],
    'SingleLogoutService' => [[
        'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:${sp.sloBinding ?? 'HTTP-Redirect'}',
        'Location' => ${php(sp.sloUrl)},
    ]],
    'certData' => ${php(certData(sp.certificate))},
    'validate.authnrequest' => ${sp.signsRequests === false ? 'false' : 'true'},
    'validate.logout' => ${sp.signsRequests === false ? 'false' : 'true'},
    'sign.logout' => true,
    'assertion.encryption' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
];
`
}

export async function startSimpleSamlPhp(sps: readonly SamlSp[]): Promise<RunningSimpleSamlPhp> {
  requireSimpleSamlPhp()
  const dir = tempDir('ssokit-ssp-')
  for (const sub of ['config', 'cert', 'log', 'data', 'tmp', 'metadata']) mkdirSync(join(dir, sub))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const entityId = `${url}/saml2/idp/metadata.php`
  const idpKeys = makeKeyPair('ssp-idp')
  writeFileSync(join(dir, 'cert/idp.pem'), idpKeys.key)
  writeFileSync(join(dir, 'cert/idp.crt'), idpKeys.cert)
  // The Debian defaults, with only what a test IdP needs changed.
  writeFileSync(
    join(dir, 'config/config.php'),
    `<?php
require ${php(DEFAULT_CONFIG)};
$config['baseurlpath'] = ${php(`${url}/`)};
$config['certdir'] = ${php(`${dir}/cert/`)};
$config['loggingdir'] = ${php(`${dir}/log/`)};
$config['datadir'] = ${php(`${dir}/data/`)};
$config['tempdir'] = ${php(`${dir}/tmp`)};
$config['secretsalt'] = 'ssokit-test-salt-0123456789abcdef';
$config['auth.adminpassword'] = 'ssokit-admin-password';
$config['logging.handler'] = 'file';
$config['enable.saml20-idp'] = true;
$config['session.cookie.secure'] = false;
// SameSite=None needs Secure, which an http test IdP cannot have; both parties are on 127.0.0.1.
$config['session.cookie.samesite'] = 'Lax';
$config['module.enable']['exampleauth'] = true;
$config['trusted.url.domains'] = [${[...sps.map((sp) => sp.trustedHost), `127.0.0.1:${port}`].map(php).join(', ')}];
$config['metadata.sources'] = [['type' => 'flatfile', 'directory' => ${php(`${dir}/metadata/`)}]];
`,
  )
  writeFileSync(join(dir, 'config/acl.php'), `<?php\n$config = [];\n`)
  writeFileSync(
    join(dir, 'config/authsources.php'),
    `<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'example-userpass' => ['exampleauth:UserPass',
        ${php(`${SSP_USER.username}:${SSP_USER.password}`)} => [
            'uid' => ['jdoe'],
            'eduPersonPrincipalName' => ['jdoe@example.org'],
            'mail' => ['jane.doe@example.org'],
            'displayName' => ['Jane Doe'],
            'isMemberOf' => ['staff', 'admins'],
            'eduPersonAffiliation' => ['member', 'staff'],
        ],
    ],
];
`,
  )
  writeFileSync(
    join(dir, 'metadata/saml20-idp-hosted.php'),
    `<?php
$metadata[${php(entityId)}] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.pem',
    'certificate' => 'idp.crt',
    'auth' => 'example-userpass',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'authproc' => [100 => ['class' => 'core:AttributeMap', 'name2oid']],
];
`,
  )
  writeFileSync(join(dir, 'metadata/saml20-sp-remote.php'), `<?php\n${sps.map(remoteSp).join('')}`)

  const child: ChildProcessWithoutNullStreams = spawn(
    '/bin/sh',
    ['-c', WATCHDOG, PHP, '-S', `127.0.0.1:${port}`, '-t', WWW],
    { stdio: 'pipe', env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: join(dir, 'config') } },
  )
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const stop = async (): Promise<void> => {
    child.stdin.end()
    await exited(child)
  }
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || i === 100) {
      await stop()
      throw new Error(`SimpleSAMLphp did not start on port ${port}:\n${output.slice(-2000)}`)
    }
    try {
      const response = await fetch(`${url}/saml2/idp/metadata.php`)
      const text = await response.text()
      // The entity id proves the answer comes from this server, not one that took the port.
      if (response.ok && text.includes(entityId)) break
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    url,
    entityId,
    metadataUrl: `${url}/saml2/idp/metadata.php`,
    initSloUrl: (returnTo) =>
      `${url}/saml2/idp/initSLO.php?RelayState=${encodeURIComponent(returnTo)}`,
    log: () => {
      try {
        return readFileSync(join(dir, 'log/simplesamlphp.log'), 'utf8').slice(-3000)
      } catch {
        return output.slice(-3000)
      }
    },
    stop,
  }
}

/** An upstream for an SP in front of it: answers every request with the headers it received. */
export async function startHeaderEcho(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(req.headers))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return { server, url: `http://127.0.0.1:${address.port}` }
}
