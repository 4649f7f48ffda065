import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Identity } from '@ssokit/core'
import { loadProxyConfig, ProxyConfigError } from '@ssokit/proxy'
import { HEADER_PRESETS } from '../src/headers.js'
import { identityHeaders } from '../src/identity-headers.js'

const BASE = {
  SSOKIT_UPSTREAM: 'http://127.0.0.1:8000',
  SSOKIT_PUBLIC_URL: 'https://my-app.example',
  SSOKIT_SAML_IDP_METADATA: 'https://idp.example.org/idp/shibboleth',
  SSOKIT_SAML_ENTITY_ID: 'https://my-app.example/sp',
}

describe('proxy: SAML sign-in and the shibboleth preset', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-proxy-saml-'))
    await writeFile(
      join(dir, 'cert.pem'),
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    )
    await writeFile(
      join(dir, 'key.pem'),
      '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n',
    )
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('SAML settings replace the OIDC provider: no issuer, client id or secret needed', async () => {
    const config = await loadProxyConfig({
      env: {
        ...BASE,
        SSOKIT_SAML_CERT_FILE: join(dir, 'cert.pem'),
        SSOKIT_SAML_KEY_FILE: join(dir, 'key.pem'),
      },
    })
    assert.deepEqual(config.saml?.idp, { url: BASE.SSOKIT_SAML_IDP_METADATA })
    assert.equal(config.saml.entityId, BASE.SSOKIT_SAML_ENTITY_ID)
    assert.match(config.saml.certificate ?? '', /BEGIN CERTIFICATE/)
    assert.match(config.saml.privateKey ?? '', /BEGIN PRIVATE KEY/)
    const fromFile = await loadProxyConfig({
      env: { ...BASE, SSOKIT_SAML_IDP_METADATA: join(dir, 'idp.xml') },
    })
    assert.deepEqual(fromFile.saml?.idp, { file: join(dir, 'idp.xml') })
  })

  it('refuses a SAML certificate without its key, and SAML without an entity id', async () => {
    await assert.rejects(
      loadProxyConfig({ env: { ...BASE, SSOKIT_SAML_CERT_FILE: join(dir, 'cert.pem') } }),
      (error: unknown) => error instanceof ProxyConfigError && /together/.test(error.message),
    )
    const withoutEntity: Record<string, string> = { ...BASE }
    delete withoutEntity.SSOKIT_SAML_ENTITY_ID
    await assert.rejects(
      loadProxyConfig({ env: withoutEntity }),
      (error: unknown) => error instanceof ProxyConfigError && error.key === 'samlEntityId',
    )
  })

  it('--saml-idp-metadata-cert reads the certificate the metadata must be signed with; a file without one is refused', async () => {
    const config = await loadProxyConfig({
      flags: { 'saml-idp-metadata-cert': join(dir, 'cert.pem') },
      env: BASE,
    })
    assert.deepEqual(Object.keys(config.saml?.idp ?? {}).sort(), ['metadataCert', 'url'])
    assert.match(config.saml?.idp.metadataCert ?? '', /BEGIN CERTIFICATE/)
    await assert.rejects(
      loadProxyConfig({ env: { ...BASE, SSOKIT_SAML_IDP_METADATA_CERT: join(dir, 'key.pem') } }),
      (error: unknown) =>
        error instanceof ProxyConfigError &&
        error.message ===
          `SSOKIT_SAML_IDP_METADATA_CERT: ${JSON.stringify(join(dir, 'key.pem'))} holds no PEM certificate`,
    )
  })

  it('samlAttributes in the file picks the attributes of each identity field; a wrong one stops start-up naming it', async () => {
    const file = join(dir, 'proxy.yaml')
    await writeFile(
      file,
      [
        'samlAttributes:',
        '  subject: urn:oid:1.3.6.1.4.1.5923.1.1.1.6',
        '  username: uid',
        '  roles: [isMemberOf, entitlement]',
        '',
      ].join('\n'),
    )
    const config = await loadProxyConfig({ file, env: BASE })
    assert.deepEqual(config.saml?.attributes, {
      subject: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.6',
      username: ['uid'],
      roles: ['isMemberOf', 'entitlement'],
    })
    assert.equal((await loadProxyConfig({ env: BASE })).saml?.attributes, undefined)
    for (const [yaml, problem] of [
      ['samlAttributes:\n  groups: isMemberOf\n', /samlAttributes/],
      ['samlAttributes:\n  roles: []\n', /samlAttributes\.roles.*attribute name/],
      ['samlAttributes:\n  subject: ""\n', /samlAttributes\.subject/],
    ] as const) {
      await writeFile(file, yaml)
      await assert.rejects(
        loadProxyConfig({ file, env: BASE }),
        (error: unknown) => error instanceof ProxyConfigError && problem.test(error.message),
        yaml,
      )
    }
  })

  it('the shibboleth preset sends REMOTE_USER and attribute-map headers the way mod_shib does', async () => {
    const config = await loadProxyConfig({ env: { ...BASE, SSOKIT_HEADER_PRESET: 'shibboleth' } })
    assert.equal(config.headers.names.username, 'Remote-User')
    assert.ok(config.headers.attributes?.includes('eppn'))
    const identity: Identity = {
      subject: 'jdoe@example.org',
      username: 'jdoe@example.org',
      email: 'jane@example.org',
      name: 'Jane',
      roles: new Set(['a']),
      kind: 'user',
      via: 'session',
      claims: {
        iss: 'https://idp.example.org/idp/shibboleth',
        session_index: '_s1',
        attributes: { eppn: ['jdoe@example.org'], entitlement: ['urn:x;y', 'urn:z'], other: ['x'] },
      },
    }
    const headers = new Map(identityHeaders(identity, HEADER_PRESETS.shibboleth))
    assert.equal(headers.get('remote-user'), 'jdoe@example.org')
    assert.equal(headers.get('eppn'), 'jdoe@example.org')
    assert.equal(headers.get('entitlement'), 'urn:x\\;y;urn:z')
    assert.equal(headers.get('shib-identity-provider'), 'https://idp.example.org/idp/shibboleth')
    assert.equal(headers.get('shib-session-index'), '_s1')
    assert.equal(headers.has('other'), false)
  })
})
