/**
 * Client authentication at the token endpoint, each method against a real `ssokit idp`: the
 * code exchange and the refresh both authenticate the way the options (or discovery) say.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  MemorySessionStore,
  SsoError,
  SsoTypeError,
  type SessionAuthOptions,
  type SsoEvent,
} from '@ssokit/core'
import { startIdp, type IdpClientConfig, type IdpClientJwk, type RunningIdp } from '@ssokit/idp'
import { decodeJwt, decodeProtectedHeader } from 'jose'

import { basicCredentials } from '../../src/session/client-auth.js'
import { APP, Browser, SECRET, sessionIdOf, startTestIdp, type TestIdp } from './support.js'

interface TokenRequest {
  readonly authorization: string | null
  readonly body: URLSearchParams
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const rsaPem = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
const ecJwk = { ...ec.privateKey.export({ format: 'jwk' }), kid: 'ec-1' }
const ed = generateKeyPairSync('ed25519')

function client(id: string, extra: Partial<IdpClientConfig>): IdpClientConfig {
  return {
    client_id: id,
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [`${APP}/*`],
    post_logout_redirect_uris: [`${APP}/*`],
    ...extra,
  }
}

let t: TestIdp
/** A realm whose token endpoint accepts client_secret_post only. */
let postOnly: RunningIdp
let clock = Date.now()
const tokenRequests: TokenRequest[] = []
const stores: MemorySessionStore[] = []

async function tappedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = input instanceof Request ? input.url : String(input)
  if (url.endsWith('/protocol/openid-connect/token')) {
    tokenRequests.push({
      authorization: new Headers(init?.headers).get('authorization'),
      body: new URLSearchParams(init?.body instanceof URLSearchParams ? init.body : ''),
    })
  }
  return fetch(input, init)
}

function options(
  idp: { readonly issuer: string },
  extra: Partial<SessionAuthOptions>,
): SessionAuthOptions {
  const store = new MemorySessionStore()
  stores.push(store)
  return {
    issuer: idp.issuer,
    clientId: 'unset',
    publicUrl: APP,
    secret: SECRET,
    store,
    bearer: false,
    expert: { fetch: tappedFetch, now: () => clock },
    ...extra,
  }
}

/** Signs in, refreshes once, and returns the two token requests that carried the client's credentials. */
async function loginAndRefresh(extra: Partial<SessionAuthOptions>): Promise<TokenRequest[]> {
  const settings = options(t, extra)
  const store = settings.store!
  const auth = createSessionAuth(settings)
  const first = tokenRequests.length
  const start = clock
  const accessToken = async (browser: Browser): Promise<string> => {
    const stored = await store.get(sessionIdOf(browser))
    assert.ok(stored, 'the session is in the store')
    return (JSON.parse(stored.data) as { accessToken: string }).accessToken
  }
  try {
    const browser = new Browser(auth, t.issuer)
    const callback = await browser.login('alice')
    assert.equal(callback.status, 302, await callback.text())
    const before = await accessToken(browser)
    clock = start + 290_000
    assert.equal((await browser.authenticate()).subject, 'alice')
    const after = await accessToken(browser)
    assert.notEqual(after, before, 'the session was refreshed')
    assert.equal(decodeJwt(after).azp, extra.clientId)
  } finally {
    clock = start
    await auth.close()
  }
  const sent = tokenRequests.slice(first)
  assert.deepEqual(
    sent.map((request) => request.body.get('grant_type')),
    ['authorization_code', 'refresh_token'],
  )
  return sent
}

before(async () => {
  const publicRsa = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', use: 'sig' }
  const publicEc = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', use: 'sig' }
  t = await startTestIdp({
    accessTokenTtl: 300,
    clients: [
      client('svc-a_b.c~d', { secret: 'svc-secret-0123456789' }),
      client('post-app', {
        secret: 'post-app-secret',
        token_endpoint_auth_method: 'client_secret_post',
      }),
      client('key-app', { jwks: { keys: [publicRsa as IdpClientJwk] } }),
      client('ec-app', { jwks: { keys: [publicEc as IdpClientJwk] } }),
      client('ed-app', {
        jwks: {
          keys: [{ ...ed.publicKey.export({ format: 'jwk' }), kid: 'ed-1' } as IdpClientJwk],
        },
      }),
      client('public-app', {}),
    ],
  })
  postOnly = await startIdp({
    port: 0,
    log: false,
    config: {
      users: [{ username: 'alice', password: 'alice' }],
      clients: [
        client('key-app', {
          secret: 'key-app-secret',
          token_endpoint_auth_method: 'client_secret_post',
        }),
      ],
      token_endpoint_auth_methods: ['client_secret_post'],
    },
  })
})

after(async () => {
  await Promise.all(stores.map((store) => store.close()))
  await t.close()
  await postOnly.close()
})

describe('client_secret_basic', () => {
  it('D09 percent-encodes only what must be: a golden vector', () => {
    assert.equal(
      basicCredentials('svc:a', 'p@ss:w+rd%/='),
      `Basic ${btoa('svc%3Aa:p%40ss%3Aw%2Brd%25%2F%3D')}`,
    )
    // Unreserved characters pass unchanged, so providers that do not decode still match.
    assert.equal(
      basicCredentials('app-one_x.y~z', 's-e_c.r~t'),
      `Basic ${btoa('app-one_x.y~z:s-e_c.r~t')}`,
    )
  })

  it('is the default with a secret: a client id with - _ . ~ signs in and refreshes', async () => {
    const sent = await loginAndRefresh({
      clientId: 'svc-a_b.c~d',
      clientSecret: 'svc-secret-0123456789',
    })
    for (const request of sent) {
      assert.equal(request.authorization, `Basic ${btoa('svc-a_b.c~d:svc-secret-0123456789')}`)
      assert.equal(request.body.get('client_secret'), null)
    }
  })
})

describe('client_secret_post', () => {
  it('sends the id and secret in the form body, never a Basic header', async () => {
    const sent = await loginAndRefresh({
      clientId: 'post-app',
      clientSecret: 'post-app-secret',
      tokenEndpointAuth: 'client_secret_post',
    })
    for (const request of sent) {
      assert.equal(request.authorization, null)
      assert.equal(request.body.get('client_id'), 'post-app')
      assert.equal(request.body.get('client_secret'), 'post-app-secret')
    }
  })
})

describe('private_key_jwt', () => {
  it('signs a fresh assertion with an RSA PEM key and its kid (chosen because a key is given)', async () => {
    const sent = await loginAndRefresh({
      clientId: 'key-app',
      clientPrivateKey: { key: rsaPem, kid: 'rsa-1' },
    })
    const ids = new Set<string>()
    for (const request of sent) {
      assert.equal(request.authorization, null)
      assert.equal(request.body.get('client_secret'), null)
      assert.equal(
        request.body.get('client_assertion_type'),
        'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      )
      const assertion = request.body.get('client_assertion') ?? ''
      assert.deepEqual(decodeProtectedHeader(assertion), { alg: 'RS256', kid: 'rsa-1' })
      const claims = decodeJwt(assertion)
      assert.equal(claims.iss, 'key-app')
      assert.equal(claims.sub, 'key-app')
      assert.equal(claims.aud, t.issuer)
      ids.add(String(claims.jti))
    }
    assert.equal(ids.size, 2, 'every assertion has its own jti')
  })

  it('takes a private EC JWK with its own kid and alg', async () => {
    const sent = await loginAndRefresh({
      clientId: 'ec-app',
      tokenEndpointAuth: 'private_key_jwt',
      clientPrivateKey: ecJwk,
    })
    const header = decodeProtectedHeader(sent[0]?.body.get('client_assertion') ?? '')
    assert.deepEqual(header, { alg: 'ES256', kid: 'ec-1' })
  })

  it('signs with an Ed25519 key', async () => {
    const sent = await loginAndRefresh({
      clientId: 'ed-app',
      clientPrivateKey: {
        key: ed.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
        kid: 'ed-1',
      },
    })
    const header = decodeProtectedHeader(sent[0]?.body.get('client_assertion') ?? '')
    assert.deepEqual(header, { alg: 'Ed25519', kid: 'ed-1' })
  })

  it('is refused by the provider when the key is not the registered one', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const events: SsoEvent[] = []
    const auth = createSessionAuth(
      options(t, {
        clientId: 'key-app',
        clientPrivateKey: {
          key: other.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
          kid: 'rsa-1',
        },
        onEvent: (event) => events.push(event),
      }),
    )
    try {
      const callback = await new Browser(auth, t.issuer).login('alice')
      assert.equal(callback.status, 502)
      const refused = events.find((event) => event.type === 'token_request_failed')
      assert.equal(refused?.code, 'client_auth_failed')
      assert.match(refused.message, /sent with private_key_jwt/)
    } finally {
      await auth.close()
    }
  })
})

describe('none', () => {
  it('is the default without a secret or key: a public client sends only its id', async () => {
    const sent = await loginAndRefresh({ clientId: 'public-app' })
    for (const request of sent) {
      assert.equal(request.authorization, null)
      assert.equal(request.body.get('client_id'), 'public-app')
      assert.equal(request.body.get('client_secret'), null)
      assert.equal(request.body.get('client_assertion'), null)
    }
  })
})

describe('start-up errors', () => {
  const base = {
    issuer: 'https://sso.example.org/realms/x',
    clientId: 'app',
    publicUrl: APP,
    secret: SECRET,
  }
  const misuse = (extra: Partial<SessionAuthOptions>, pattern: RegExp): void => {
    assert.throws(
      () => createSessionAuth({ ...base, ...extra }),
      (error: unknown) => error instanceof SsoTypeError && pattern.test(error.message),
    )
  }

  it('names the material a method needs', () => {
    misuse({ tokenEndpointAuth: 'client_secret_post' }, /clientSecret is required/)
    misuse({ tokenEndpointAuth: 'client_secret_basic' }, /clientSecret is required/)
    misuse(
      { tokenEndpointAuth: 'private_key_jwt', clientSecret: 'x' },
      /clientPrivateKey is required/,
    )
    misuse({ tokenEndpointAuth: 'none', clientSecret: 'x' }, /public clients/)
    misuse({ tokenEndpointAuth: 'tls_client_auth' as never }, /must be one of/)
  })

  it('refuses a key that is not a usable private key', () => {
    misuse({ clientPrivateKey: 'not a key' }, /not a private key/)
    misuse(
      { clientPrivateKey: rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string },
      /not a private key/,
    )
    misuse({ clientPrivateKey: { kty: 'RSA', n: 'abc', e: 'AQAB' } }, /not a private key/)
    misuse({ clientPrivateKey: { key: rsaPem, alg: 'ES256' } }, /does not fit this key/)
    misuse({ clientPrivateKey: { key: rsaPem, kid: '' } }, /kid must be/)
  })

  it('ready() names a method the provider does not list, and the sign-in page says so too', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth(
      options(postOnly, {
        clientId: 'key-app',
        clientPrivateKey: { key: rsaPem, kid: 'rsa-1' },
        onEvent: (event) => events.push(event),
      }),
    )
    try {
      await assert.rejects(auth.ready(), (error: unknown) => {
        assert.ok(error instanceof SsoError)
        assert.equal(error.code, 'client_auth_failed')
        assert.match(error.message, /does not accept private_key_jwt/)
        assert.match(error.message, /lists client_secret_post\)/)
        return true
      })
      const before = tokenRequests.length
      const callback = await new Browser(auth, postOnly.issuer).login('alice')
      assert.equal(callback.status, 502)
      assert.equal(tokenRequests.length, before, 'no token request was sent')
      assert.ok(events.some((event) => event.reason === 'client_auth_unsupported'))
    } finally {
      await auth.close()
    }
  })

  it('a secret with a provider that lists only client_secret_post uses it', async () => {
    const auth = createSessionAuth(
      options(postOnly, { clientId: 'key-app', clientSecret: 'key-app-secret' }),
    )
    try {
      await auth.ready()
      const before = tokenRequests.length
      const callback = await new Browser(auth, postOnly.issuer).login('alice')
      assert.equal(callback.status, 302, await callback.text())
      const sent = tokenRequests[before]
      assert.equal(sent?.authorization, null)
      assert.equal(sent.body.get('client_secret'), 'key-app-secret')
    } finally {
      await auth.close()
    }
  })
})
