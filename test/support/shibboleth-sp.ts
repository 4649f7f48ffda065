/**
 * Shibboleth SP 3 as deployments run it: shibd and Apache with mod_shib (Debian's
 * `libapache2-mod-shib`), on a free 127.0.0.1 port, configured in a temporary directory, each
 * under the shell watchdog of `redis.ts` so that it stops with the test process. `/app` needs a
 * Shibboleth session and is proxied to `upstream` with the attributes as request headers
 * (`ShibUseHeaders On`) and `Remote-User`, as an application behind mod_shib receives them.
 * The attribute map is Debian's own file with its commented-out attributes switched on, which is
 * what a deployer does; no attribute filter (the IdP's metadata has no scopes to check).
 */
import {
  execFileSync,
  spawn,
  spawnSync,
  type ChildProcessWithoutNullStreams,
} from 'node:child_process'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { exited, tempDir, WATCHDOG } from './redis.js'

const SHIBD = '/usr/sbin/shibd'
const APACHE = '/usr/sbin/apache2'
const MODULES = '/usr/lib/apache2/modules'
const SHIB_ETC = '/etc/shibboleth'

export interface ShibbolethSpSetup {
  /** The IdP metadata document (read once at start-up). */
  readonly idpMetadata: string
  readonly idpEntityId: string
  /** Where `/app` is proxied to. */
  readonly upstream: string
  /** The SP's key pair (signing and decryption). */
  readonly key: string
  readonly cert: string
  /** The port, chosen beforehand: the IdP must know the SP's endpoints. */
  readonly port: number
}

export interface RunningShibbolethSp {
  readonly url: string
  readonly entityId: string
  /** Everything shibd and Apache logged, for a failing test's message. */
  log(): string
  stop(): Promise<void>
}

export function requireShibbolethSp(): void {
  for (const [path, pkg] of [
    [SHIBD, 'libapache2-mod-shib'],
    [`${MODULES}/mod_shib.so`, 'libapache2-mod-shib'],
    [APACHE, 'apache2'],
  ] as const) {
    if (!existsSync(path))
      throw new Error(`${path} is missing; install it with: apt-get install ${pkg}`)
  }
}

/** The ids of the attribute map's attributes: the header names mod_shib sends them under. */
export function attributeMapIds(): string[] {
  return [
    ...new Set(
      [...attributeMap().matchAll(/<Attribute [^>]*\bid="([^"]+)"/g)].map((m) => m[1] ?? ''),
    ),
  ]
}

/** Shibboleth SP's own attribute-map.xml with the attributes it ships commented out enabled. */
function attributeMap(): string {
  const stock = readFileSync(join(SHIB_ETC, 'attribute-map.xml'), 'utf8')
  return stock.replace(/<!--((?:(?!-->)[\s\S])*?<Attribute [\s\S]*?)-->/g, '$1')
}

/** The Endpoint a port taken by someone else would not answer like this. */
export const SHIB_SP_PORT_PROBE = '/Shibboleth.sso/Metadata'

export async function startShibbolethSp(setup: ShibbolethSpSetup): Promise<RunningShibbolethSp> {
  requireShibbolethSp()
  const dir = tempDir('ssokit-shib-')
  // Apache's children run as www-data: they read the configuration and reach shibd's socket.
  chmodSync(dir, 0o755)
  const url = `http://127.0.0.1:${setup.port}`
  const entityId = `${url}/shibboleth`
  writeFileSync(join(dir, 'idp-metadata.xml'), setup.idpMetadata)
  writeFileSync(join(dir, 'sp-key.pem'), setup.key)
  writeFileSync(join(dir, 'sp-cert.pem'), setup.cert)
  writeFileSync(join(dir, 'attribute-map.xml'), attributeMap())
  for (const file of ['protocols.xml', 'security-policy.xml']) {
    writeFileSync(join(dir, file), readFileSync(join(SHIB_ETC, file)))
  }
  const logger = (name: string) =>
    `log4j.rootCategory=WARN, out\nlog4j.appender.out=org.apache.log4j.FileAppender\nlog4j.appender.out.fileName=${join(dir, `${name}.log`)}\nlog4j.appender.out.layout=org.apache.log4j.PatternLayout\nlog4j.appender.out.layout.ConversionPattern=%d{%Y-%m-%d %H:%M:%S} %p %c %x: %m%n\n`
  writeFileSync(join(dir, 'shibd.logger'), logger('shibd'))
  writeFileSync(join(dir, 'native.logger'), logger('native'))
  writeFileSync(
    join(dir, 'shibboleth2.xml'),
    `<SPConfig xmlns="urn:mace:shibboleth:3.0:native:sp:config" xmlns:conf="urn:mace:shibboleth:3.0:native:sp:config" clockSkew="180">
  <OutOfProcess logger="${dir}/shibd.logger"/>
  <InProcess logger="${dir}/native.logger"/>
  <UnixListener address="${dir}/shibd.sock"/>
  <StorageService type="Memory" id="mem" cleanupInterval="900"/>
  <SessionCache type="StorageService" StorageService="mem" cacheAssertions="false" cacheAllowance="900" inprocTimeout="900" cleanupInterval="900"/>
  <ReplayCache StorageService="mem"/>
  <ApplicationDefaults entityID="${entityId}" REMOTE_USER="eppn subject-id pairwise-id persistent-id">
    <Sessions lifetime="28800" timeout="3600" relayState="ss:mem" checkAddress="false" handlerSSL="false" cookieProps="http" redirectLimit="exact">
      <SSO entityID="${setup.idpEntityId}">SAML2</SSO>
      <Logout>SAML2 Local</Logout>
      <Handler type="MetadataGenerator" Location="/Metadata" signing="false"/>
      <Handler type="Session" Location="/Session" showAttributeValues="true"/>
    </Sessions>
    <Errors supportContact="root@localhost"/>
    <MetadataProvider type="XML" validate="true" path="${dir}/idp-metadata.xml"/>
    <AttributeExtractor type="XML" validate="true" reloadChanges="false" path="${dir}/attribute-map.xml"/>
    <CredentialResolver type="File" key="${dir}/sp-key.pem" certificate="${dir}/sp-cert.pem"/>
  </ApplicationDefaults>
  <SecurityPolicyProvider type="XML" validate="true" path="${dir}/security-policy.xml"/>
  <ProtocolProvider type="XML" validate="true" reloadChanges="false" path="${dir}/protocols.xml"/>
</SPConfig>
`,
  )
  const check = spawnSync(SHIBD, ['-t', '-c', join(dir, 'shibboleth2.xml')], { encoding: 'utf8' })
  if (check.status !== 0)
    throw new Error(`shibd -t failed:\n${check.stdout}${check.stderr}${readLogs(dir)}`)

  execFileSync('mkdir', ['-p', join(dir, 'run'), join(dir, 'htdocs')])
  execFileSync('chown', ['www-data:', join(dir, 'run')])
  writeFileSync(
    join(dir, 'httpd.conf'),
    `ServerRoot ${dir}
ServerName ${url}
UseCanonicalName On
Listen 127.0.0.1:${setup.port}
PidFile ${dir}/run/httpd.pid
DefaultRuntimeDir ${dir}/run
Mutex file:${dir}/run default
ErrorLog ${dir}/error.log
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module  ${MODULES}/mod_mpm_event.so
LoadModule authn_core_module ${MODULES}/mod_authn_core.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule headers_module    ${MODULES}/mod_headers.so
LoadModule proxy_module      ${MODULES}/mod_proxy.so
LoadModule proxy_http_module ${MODULES}/mod_proxy_http.so
LoadModule mod_shib          ${MODULES}/mod_shib.so
DocumentRoot ${dir}/htdocs
ShibConfig ${dir}/shibboleth2.xml
ShibCompatValidUser Off
<Location /Shibboleth.sso>
  SetHandler shib
</Location>
<Location /app>
  AuthType shibboleth
  ShibRequestSetting requireSession 1
  ShibUseHeaders On
  Require shib-session
  RequestHeader set Remote-User "expr=%{REMOTE_USER}"
  ProxyPass ${setup.upstream}/app
</Location>
`,
  )
  const apacheCheck = spawnSync(APACHE, ['-t', '-f', join(dir, 'httpd.conf')], {
    encoding: 'utf8',
  })
  if (apacheCheck.status !== 0) throw new Error(`apache2 -t failed:\n${apacheCheck.stderr}`)

  const children: ChildProcessWithoutNullStreams[] = []
  let output = ''
  const launch = (command: string, args: readonly string[]) => {
    const child = spawn('/bin/sh', ['-c', WATCHDOG, command, ...args], { stdio: 'pipe' })
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    children.push(child)
    return child
  }
  const stop = async (): Promise<void> => {
    for (const child of children.reverse()) {
      child.stdin.end()
      await exited(child)
    }
  }
  const log = () => `${output}${readLogs(dir)}`.slice(-4000)
  const shibd = launch(SHIBD, ['-F', '-f', '-c', join(dir, 'shibboleth2.xml')])
  for (let i = 0; !existsSync(join(dir, 'shibd.sock')); i++) {
    if (shibd.exitCode !== null || i === 400) {
      await stop()
      throw new Error(`shibd did not start:\n${log()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const apache = launch(APACHE, ['-f', join(dir, 'httpd.conf'), '-DFOREGROUND'])
  for (let i = 0; ; i++) {
    if (apache.exitCode !== null || i === 400) {
      await stop()
      throw new Error(`Apache with mod_shib did not start on port ${setup.port}:\n${log()}`)
    }
    try {
      const response = await fetch(`${url}${SHIB_SP_PORT_PROBE}`)
      // Its own entity id in the generated metadata: this is our SP, not whoever took the port.
      if (response.ok && (await response.text()).includes(entityId)) break
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { url, entityId, log, stop }
}

function readLogs(dir: string): string {
  let text = ''
  for (const file of ['shibd.log', 'native.log', 'error.log']) {
    try {
      text += `\n--- ${file}\n${readFileSync(join(dir, file), 'utf8').slice(-1500)}`
    } catch {
      // not written yet
    }
  }
  return text
}
