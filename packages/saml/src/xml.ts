/**
 * What is done to SAML XML before and after the library checks it. Before: the posted text is
 * bounded, must be base64 of well-formed UTF-8 XML, and may carry no document type declaration
 * (SAML forbids DTDs; refusing them outright closes XXE and entity expansion whatever the parser
 * does). After: the assertion the library verified is read with a DOM, whose `textContent`
 * joins the text around comments, so `user@example.org<!---->.evil` reads as what was signed.
 */
import { inflateRawSync } from 'node:zlib'
import { DOMParser } from '@xmldom/xmldom'

export const SAML_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol'
export const SAML_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion'

/** Why a message was refused before any signature was looked at. */
export class XmlRefusal extends Error {
  override readonly name = 'XmlRefusal'
}

const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/
const DOCTYPE = /<!DOCTYPE|<!ENTITY|<!ATTLIST|<!ELEMENT/i

function checkText(xml: string): string {
  if (DOCTYPE.test(xml)) throw new XmlRefusal('the message carries a document type declaration')
  if (!xml.trimStart().startsWith('<')) throw new XmlRefusal('the message is not an XML document')
  return xml
}

/** The XML of an HTTP-POST binding parameter (base64, not compressed). */
export function decodePosted(value: string, maxBytes: number): string {
  if (value.length === 0 || value.length > Math.ceil((maxBytes * 4) / 3) + 4)
    throw new XmlRefusal('the message is empty or too large')
  if (!BASE64.test(value)) throw new XmlRefusal('the message is not base64')
  const bytes = Buffer.from(value, 'base64')
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })
  let xml: string
  try {
    xml = text.decode(bytes)
  } catch {
    throw new XmlRefusal('the message is not UTF-8')
  }
  return checkText(xml)
}

/** The XML of an HTTP-Redirect binding parameter (base64 of raw DEFLATE), inflated with a bound. */
export function decodeRedirected(value: string, maxBytes: number): string {
  if (value.length === 0 || !BASE64.test(value)) throw new XmlRefusal('the message is not base64')
  let inflated: Buffer
  try {
    inflated = inflateRawSync(Buffer.from(value, 'base64'), { maxOutputLength: maxBytes })
  } catch {
    throw new XmlRefusal('the message does not inflate, or inflates too large')
  }
  return checkText(inflated.toString('utf8'))
}

/** Parses XML that passed `checkText`; any parser error or warning refuses it. */
export function parseXml(xml: string): Document {
  const fail = (message: string): never => {
    throw new XmlRefusal(`the XML does not parse: ${message.slice(0, 120)}`)
  }
  const document = new DOMParser({
    errorHandler: { warning: fail, error: fail, fatalError: fail },
  }).parseFromString(checkText(xml), 'text/xml')
  if ((document.documentElement as Element | null) === null) fail('no root element')
  return document
}

/** The root element of parsed XML. */
export function rootOf(xml: string): Element {
  return parseXml(xml).documentElement
}

/** Child elements of `parent` with this namespace and local name. */
export function children(parent: Element, ns: string, localName: string): Element[] {
  const found: Element[] = []
  for (let node = parent.firstChild; node !== null; node = node.nextSibling) {
    if (node.nodeType !== 1) continue
    const element = node as Element
    if (element.namespaceURI === ns && element.localName === localName) found.push(element)
  }
  return found
}

export function child(parent: Element, ns: string, localName: string): Element | undefined {
  return children(parent, ns, localName)[0]
}

/** An element's text with comments and processing instructions left out, joined. */
export function textOf(element: Element): string {
  let text = ''
  for (let node = element.firstChild; node !== null; node = node.nextSibling) {
    if (node.nodeType === 3 || node.nodeType === 4) text += node.nodeValue ?? ''
    else if (node.nodeType === 1) text += textOf(node as Element)
  }
  return text.trim()
}

export function attribute(element: Element, name: string): string | undefined {
  return element.hasAttribute(name) ? (element.getAttribute(name) ?? undefined) : undefined
}
