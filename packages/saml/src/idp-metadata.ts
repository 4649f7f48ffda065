/**
 * The identity provider as its SAML metadata describes it: entity id, where to send the
 * AuthnRequest and LogoutRequest (HTTP-Redirect binding), and the certificates it signs with.
 * Read from a file, a URL or a string; a file or URL is read again every `refreshSeconds`, and a
 * failed refresh keeps the last good metadata (a federation's metadata server being down must
 * not stop sign-in). With `metadataCert`, only metadata signed with that certificate is used,
 * and metadata past its `validUntil` never is.
 */
import { readFile } from 'node:fs/promises'
import {
  MetadataSignatureError,
  pemCertificates,
  verifiedMetadataXml,
} from './metadata-signature.js'
import { attribute, children, rootOf, textOf } from './xml.js'

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata'
const DS = 'http://www.w3.org/2000/09/xmldsig#'
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'
const MAX_METADATA_BYTES = 16 * 1024 * 1024

export interface IdpMetadata {
  readonly entityId: string
  readonly ssoUrl: string
  readonly sloUrl: string | undefined
  /** PEM certificates from `KeyDescriptor use="signing"` (or without `use`). */
  readonly signingCerts: readonly string[]
}

/** Where the metadata comes from: exactly one of `file`, `url` or `xml`. */
export interface IdpMetadataSource {
  readonly file?: string
  readonly url?: string
  readonly xml?: string
  /** The entity to use when the document lists several (a federation aggregate). */
  readonly entityId?: string
  /** How often a file or URL is read again. Default 3600 (one hour). */
  readonly refreshSeconds?: number
  /**
   * PEM certificate(s) the metadata must be signed with, e.g. a federation's metadata signing
   * certificate; unsigned or otherwise signed metadata is refused. Default: no signature check
   * (the metadata is trusted as the file or https URL it comes from).
   */
  readonly metadataCert?: string
}

export class IdpMetadataError extends Error {
  override readonly name = 'IdpMetadataError'
}

function pem(base64: string): string {
  const body = base64.replace(/\s+/g, '')
  const lines = body.match(/.{1,64}/g) ?? []
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`
}

function descendants(root: Element, ns: string, localName: string): Element[] {
  const found: Element[] = []
  const list = root.getElementsByTagNameNS(ns, localName)
  for (let i = 0; i < list.length; i++) {
    const element = list.item(i)
    if (element !== null) found.push(element)
  }
  return found
}

function redirectLocation(descriptor: Element, localName: string): string | undefined {
  for (const service of children(descriptor, MD, localName)) {
    if (attribute(service, 'Binding') === REDIRECT) return attribute(service, 'Location')
  }
  return undefined
}

/** Parses one IdP out of a metadata document (an EntityDescriptor or an EntitiesDescriptor). */
export function parseIdpMetadata(
  xml: string,
  entityId?: string,
  now: number = Date.now(),
): IdpMetadata {
  let root: Element
  try {
    root = rootOf(xml)
  } catch (error) {
    throw new IdpMetadataError(
      `The IdP metadata is not XML SAML metadata can be: ${(error as Error).message}.`,
    )
  }
  const validUntil = Date.parse(attribute(root, 'validUntil') ?? '')
  if (!Number.isNaN(validUntil) && validUntil <= now)
    throw new IdpMetadataError(
      `The IdP metadata expired at ${new Date(validUntil).toISOString()} (its validUntil).`,
    )
  const entities = (
    root.namespaceURI === MD && root.localName === 'EntityDescriptor'
      ? [root]
      : descendants(root, MD, 'EntityDescriptor')
  ).filter((e) => children(e, MD, 'IDPSSODescriptor').length > 0)
  const chosen =
    entityId === undefined
      ? entities.length === 1
        ? entities[0]
        : undefined
      : entities.find((e) => attribute(e, 'entityID') === entityId)
  if (chosen === undefined) {
    throw new IdpMetadataError(
      entityId === undefined
        ? `The IdP metadata describes ${entities.length} identity providers; name one with entityId.`
        : `The IdP metadata has no identity provider ${JSON.stringify(entityId)}.`,
    )
  }
  const descriptor = children(chosen, MD, 'IDPSSODescriptor')[0] as Element
  const id = attribute(chosen, 'entityID')
  const ssoUrl = redirectLocation(descriptor, 'SingleSignOnService')
  if (id === undefined || id === '') throw new IdpMetadataError('The IdP metadata has no entityID.')
  if (ssoUrl === undefined) {
    throw new IdpMetadataError(
      'The IdP metadata has no SingleSignOnService with the HTTP-Redirect binding.',
    )
  }
  const signingCerts: string[] = []
  for (const key of children(descriptor, MD, 'KeyDescriptor')) {
    const use = attribute(key, 'use')
    if (use !== undefined && use !== 'signing') continue
    for (const cert of descendants(key, DS, 'X509Certificate')) signingCerts.push(pem(textOf(cert)))
  }
  if (signingCerts.length === 0)
    throw new IdpMetadataError('The IdP metadata lists no signing certificate.')
  return Object.freeze({
    entityId: id,
    ssoUrl,
    sloUrl: redirectLocation(descriptor, 'SingleLogoutService'),
    signingCerts: Object.freeze(signingCerts),
  })
}

async function readSource(source: IdpMetadataSource, fetchImpl: typeof fetch): Promise<string> {
  if (source.xml !== undefined) return source.xml
  if (source.file !== undefined) return readFile(source.file, 'utf8')
  const url = source.url as string
  const response = await fetchImpl(url, {
    headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' },
    redirect: 'error',
    signal: AbortSignal.timeout(10_000),
  })
  if (!response.ok) throw new IdpMetadataError(`The IdP metadata URL answered ${response.status}.`)
  const declared = Number(response.headers.get('content-length') ?? '0')
  if (declared > MAX_METADATA_BYTES) throw new IdpMetadataError('The IdP metadata is too large.')
  const text = await response.text()
  if (text.length > MAX_METADATA_BYTES) throw new IdpMetadataError('The IdP metadata is too large.')
  return text
}

/** The current metadata, read again when it is older than the refresh interval. */
export class IdpMetadataSourceReader {
  readonly #source: IdpMetadataSource
  readonly #refreshMs: number
  readonly #fetch: typeof fetch
  readonly #now: () => number
  readonly #onRefreshError: (error: IdpMetadataError) => void
  #current: { readonly metadata: IdpMetadata; readonly at: number } | undefined
  #pending: Promise<IdpMetadata> | undefined

  constructor(
    source: IdpMetadataSource,
    fetchImpl: typeof fetch,
    now: () => number,
    onRefreshError: (error: IdpMetadataError) => void = () => undefined,
  ) {
    this.#source = source
    this.#refreshMs = (source.refreshSeconds ?? 3600) * 1000
    this.#fetch = fetchImpl
    this.#now = now
    this.#onRefreshError = onRefreshError
  }

  /** The metadata; rejects with `IdpMetadataError` only when no good metadata was ever read. */
  async get(): Promise<IdpMetadata> {
    const current = this.#current
    const fresh = current !== undefined && this.#now() - current.at < this.#refreshMs
    if (current !== undefined && (fresh || this.#source.xml !== undefined)) return current.metadata
    this.#pending ??= this.#load().finally(() => {
      this.#pending = undefined
    })
    if (current === undefined) return this.#pending
    // A refresh is under way: the last good metadata serves meanwhile, and if the refresh fails.
    this.#pending.catch((error: unknown) => {
      if (error instanceof IdpMetadataError) this.#onRefreshError(error)
    })
    return current.metadata
  }

  async #load(): Promise<IdpMetadata> {
    let xml: string
    try {
      xml = await readSource(this.#source, this.#fetch)
    } catch (error) {
      if (error instanceof IdpMetadataError) throw error
      throw new IdpMetadataError(
        `The IdP metadata cannot be read: ${error instanceof Error ? error.message : String(error)}.`,
        { cause: error },
      )
    }
    if (this.#source.metadataCert !== undefined) {
      try {
        xml = verifiedMetadataXml(xml, pemCertificates(this.#source.metadataCert))
      } catch (error) {
        if (error instanceof MetadataSignatureError) throw new IdpMetadataError(error.message)
        throw new IdpMetadataError(
          `The IdP metadata cannot be checked: ${error instanceof Error ? error.message : String(error)}.`,
        )
      }
    }
    const metadata = parseIdpMetadata(xml, this.#source.entityId, this.#now())
    this.#current = { metadata, at: this.#now() }
    return metadata
  }
}
