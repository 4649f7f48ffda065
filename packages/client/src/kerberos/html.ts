/**
 * Just enough HTML reading for Keycloak's login pages, found by element id as CERN's tools do:
 * a start tag's attributes, a form's action and fields, the error message.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, entity: string) => {
    if (entity.startsWith('#x') || entity.startsWith('#X'))
      return String.fromCodePoint(parseInt(entity.slice(2), 16))
    if (entity.startsWith('#')) return String.fromCodePoint(parseInt(entity.slice(1), 10))
    return ENTITIES[entity.toLowerCase()] ?? whole
  })
}

export interface Tag {
  readonly name: string
  readonly attributes: ReadonlyMap<string, string>
  /** Where the tag starts and ends in the page. */
  readonly start: number
  readonly end: number
}

const TAG =
  /<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*\/?>/g
const ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g

export function tags(html: string, name?: string): Tag[] {
  const out: Tag[] = []
  for (const match of html.matchAll(TAG)) {
    const tagName = (match[1] ?? '').toLowerCase()
    if (name !== undefined && tagName !== name) continue
    const attributes = new Map<string, string>()
    for (const attribute of (match[2] ?? '').matchAll(ATTRIBUTE)) {
      const key = (attribute[1] ?? '').toLowerCase()
      attributes.set(key, decodeEntities(attribute[2] ?? attribute[3] ?? attribute[4] ?? ''))
    }
    out.push({ name: tagName, attributes, start: match.index, end: match.index + match[0].length })
  }
  return out
}

export function byId(html: string, id: string): Tag | undefined {
  return tags(html).find((tag) => tag.attributes.get('id') === id)
}

export interface Form {
  readonly action: string | undefined
  readonly method: string
  /** Named inputs with their values (hidden fields, and the submit button's name). */
  readonly fields: ReadonlyMap<string, string>
  readonly names: ReadonlySet<string>
}

/** The form starting at `tag`, up to its `</form>`. */
export function formAt(html: string, tag: Tag): Form {
  const close = html.indexOf('</form>', tag.end)
  const inner = html.slice(tag.end, close === -1 ? undefined : close)
  const fields = new Map<string, string>()
  const names = new Set<string>()
  for (const input of [...tags(inner, 'input'), ...tags(inner, 'button')]) {
    const name = input.attributes.get('name')
    if (name === undefined) continue
    names.add(name)
    const type = (
      input.attributes.get('type') ?? (input.name === 'button' ? 'submit' : 'text')
    ).toLowerCase()
    if (type === 'hidden' || type === 'submit') {
      if (!fields.has(name)) fields.set(name, input.attributes.get('value') ?? '')
    }
  }
  return {
    action: tag.attributes.get('action'),
    method: (tag.attributes.get('method') ?? 'get').toLowerCase(),
    fields,
    names,
  }
}

export function formById(html: string, id: string): Form | undefined {
  const tag = byId(html, id)
  return tag === undefined ? undefined : formAt(html, tag)
}

/** A form the page submits by itself (SAML and form_post responses). */
export function autoSubmitForm(html: string): Form | undefined {
  const first = tags(html, 'form')[0]
  if (first === undefined) return undefined
  const form = formAt(html, first)
  const auto =
    /document\.forms\[0\]\.submit\(\)|querySelector\(['"]form['"]\)\.submit\(\)|onload="[^"]*submit\(\)/.test(
      html,
    ) ||
    form.fields.has('SAMLResponse') ||
    form.fields.has('SAMLRequest')
  return auto ? form : undefined
}

/** The text of the element `id` (Keycloak's `kc-error-message`), without its markup. */
export function textOf(html: string, id: string): string | undefined {
  const tag = byId(html, id)
  if (tag === undefined) return undefined
  const close = html.indexOf(`</${tag.name}>`, tag.end)
  const inner = html.slice(tag.end, close === -1 ? undefined : close)
  const text = decodeEntities(inner.replace(/<[^>]*>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim()
  return text === '' ? undefined : text
}

export function title(html: string): string | undefined {
  const match = /<title[^>]*>([^<]*)<\/title>/i.exec(html)
  const text = match?.[1] === undefined ? '' : decodeEntities(match[1]).replace(/\s+/g, ' ').trim()
  return text === '' ? undefined : text
}
