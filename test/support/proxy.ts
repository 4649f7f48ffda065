/**
 * `ssokit proxy` (the code behind the command) started by a test in front of an upstream, for
 * the development realm's `demo-app` client, on a free loopback port.
 */
import { loadProxyConfig, startProxy, type RunningProxy } from '@ssokit/proxy'
import { freePort } from './redis.js'

export interface ProxyFor {
  readonly proxy: RunningProxy
  /** The proxy's public URL: `http://<host>:<port>`. */
  readonly base: string
}

export async function startProxyFor(
  issuer: string,
  upstream: string,
  options: { readonly host?: string; readonly flags?: Readonly<Record<string, string>> } = {},
): Promise<ProxyFor> {
  // A free port can be taken between the probe and the proxy's bind: try another.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const base = `http://${options.host ?? 'localhost'}:${port}`
    const config = await loadProxyConfig({
      flags: {
        upstream,
        issuer,
        'client-id': 'demo-app',
        'public-url': base,
        port,
        host: '127.0.0.1',
        ...options.flags,
      },
      env: { OIDC_CLIENT_SECRET: 'demo-app-secret' },
    })
    try {
      return { proxy: await startProxy(config, { onEvent: () => {} }), base }
    } catch (error) {
      if (attempt >= 2 || (error as { code?: unknown }).code !== 'EADDRINUSE') throw error
    }
  }
}
