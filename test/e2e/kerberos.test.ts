/**
 * Kerberos single sign-on against a real MIT KDC started once for this file: its own realm on
 * 127.0.0.1, principals for two users and HTTP/localhost, tickets from kinit.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import kerberos from 'kerberos'
import { startKdc, type RunningKdc } from '../support/kdc.js'

let kdc: RunningKdc

before(async () => {
  kdc = await startKdc()
  // The GSSAPI library reads these from the process environment.
  process.env.KRB5_CONFIG = kdc.krb5Config
  process.env.KRB5_KTNAME = kdc.keytab
})

after(async () => {
  await kdc.stop()
})

describe('the test realm', () => {
  it('issues a ticket that a keytab-backed acceptor takes as SPNEGO', async () => {
    process.env.KRB5CCNAME = await kdc.kinit('alice', 'alice-pw')
    const client = await kerberos.initializeClient('HTTP@localhost', {
      mechOID: kerberos.GSS_MECH_OID_SPNEGO,
    })
    const token = await client.step('')
    const server = await kerberos.initializeServer('')
    await server.step(token)
    assert.equal(server.username, 'alice@SSOKIT.TEST')
    assert.equal(server.contextComplete, true)
  })

  it('refuses a wrong password at kinit', async () => {
    await assert.rejects(kdc.kinit('bob', 'wrong'), /kinit/)
  })
})
