/**
 * The C front servers of the proxy benchmark, each from its own configuration in a temporary
 * folder (nothing under /etc is read or changed), pinned to a core, stopped by PID:
 *
 * - nginx with a bare `proxy_pass` (keep-alive to the upstream), the floor of any proxy;
 * - Apache httpd with mod_auth_openidc checking bearer JWTs (`AuthType oauth20`, the
 *   provider's key given as a file since the module wants JWKS over https) and mod_proxy_http,
 *   passing the subject on as `X-Forwarded-User`: what CERN applications ran before.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface FrontServer {
  readonly name: string
  readonly url: string
  /** The process started; its workers are its children. */
  readonly pid: number | undefined
  stop(): Promise<void>
}

function pinned(core: number, command: string, args: readonly string[]): ChildProcess {
  const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0
  return hasTaskset
    ? spawn('taskset', ['-c', String(core), command, ...args], { stdio: 'inherit' })
    : spawn(command, args, { stdio: 'inherit' })
}

async function waitFor(url: string, headers: Record<string, string> = {}): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(url, { headers })
      await res.arrayBuffer()
      if (res.status < 500) return
    } catch {
      // not yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${url} did not answer`)
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exit = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exit
}

/** nginx, one worker, `proxy_pass` to `upstream` over keep-alive connections. */
export async function startNginx(
  dir: string,
  port: number,
  upstream: string,
  core: number,
): Promise<FrontServer> {
  const root = join(dir, 'nginx')
  mkdirSync(root, { recursive: true })
  const conf = join(root, 'nginx.conf')
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${root}/nginx.pid;
error_log ${root}/error.log warn;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 1024; }
http {
  access_log ${root}/access.log;
  client_body_temp_path ${root}/body;
  proxy_temp_path ${root}/proxy;
  fastcgi_temp_path ${root}/fastcgi;
  uwsgi_temp_path ${root}/uwsgi;
  scgi_temp_path ${root}/scgi;
  upstream app { server ${new URL(upstream).host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  )
  const child = pinned(core, '/usr/sbin/nginx', ['-c', conf, '-p', root])
  const url = `http://127.0.0.1:${port}/`
  await waitFor(url)
  return { name: 'nginx', url, pid: child.pid, stop: () => stopped(child) }
}

/** The provider's signing keys as PEM files, `kid#path` pairs for OIDCOAuthVerifyCertFiles. */
async function keyFiles(issuer: string, dir: string): Promise<string> {
  const jwks = (await (await fetch(`${issuer}/protocol/openid-connect/certs`)).json()) as {
    keys: (JsonWebKey & { kid?: string; use?: string })[]
  }
  return jwks.keys
    .filter((key) => key.kid !== undefined && key.use !== 'enc')
    .map((key, i) => {
      const path = join(dir, `key-${String(i)}.pem`)
      writeFileSync(
        path,
        createPublicKey({ key, format: 'jwk' }).export({ type: 'spki', format: 'pem' }),
      )
      return `${key.kid ?? ''}#${path}`
    })
    .join(' ')
}

/** Apache httpd (event MPM) + mod_auth_openidc in bearer mode + mod_proxy_http. */
export async function startApache(
  dir: string,
  port: number,
  upstream: string,
  issuer: string,
  token: string,
  core: number,
): Promise<FrontServer> {
  const root = join(dir, 'apache')
  const run = join(root, 'run')
  mkdirSync(run, { recursive: true })
  chmodSync(root, 0o755)
  chmodSync(run, 0o777)
  const modules = '/usr/lib/apache2/modules'
  const conf = join(root, 'httpd.conf')
  const asRoot = process.getuid?.() === 0
  writeFileSync(
    conf,
    `ServerRoot ${root}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${run}/httpd.pid
DefaultRuntimeDir ${run}
Mutex file:${run} default
ErrorLog ${root}/error.log
LogLevel error
LogFormat "%h %u \\"%r\\" %>s %b %D" short
CustomLog ${root}/access.log short
${asRoot ? 'User www-data\nGroup www-data' : ''}
LoadModule mpm_event_module    ${modules}/mod_mpm_event.so
LoadModule authn_core_module   ${modules}/mod_authn_core.so
LoadModule authz_core_module   ${modules}/mod_authz_core.so
LoadModule authz_user_module   ${modules}/mod_authz_user.so
LoadModule headers_module      ${modules}/mod_headers.so
LoadModule proxy_module        ${modules}/mod_proxy.so
LoadModule proxy_http_module   ${modules}/mod_proxy_http.so
LoadModule auth_openidc_module ${modules}/mod_auth_openidc.so
ServerLimit 1
StartServers 1
ThreadsPerChild 64
MaxRequestWorkers 64
KeepAliveTimeout 60
MaxKeepAliveRequests 0
OIDCOAuthVerifyCertFiles ${await keyFiles(issuer, root)}
OIDCOAuthRemoteUserClaim sub
<Location />
  AuthType oauth20
  Require valid-user
  RequestHeader set X-Forwarded-User "expr=%{REMOTE_USER}"
  RequestHeader unset Authorization
  ProxyPass ${upstream}/ keepalive=On
</Location>
`,
  )
  const check = spawnSync('/usr/sbin/apache2', ['-t', '-f', conf], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`apache2 -t: ${check.stderr}`)
  const child = pinned(core, '/usr/sbin/apache2', ['-f', conf, '-DFOREGROUND'])
  const url = `http://127.0.0.1:${port}/`
  await waitFor(url, { authorization: `Bearer ${token}` })
  return { name: 'apache', url, pid: child.pid, stop: () => stopped(child) }
}
