/** A Redis URL fit for display: its password, if it has one, replaced. */
export function redactUrl(url: string | undefined): string {
  if (url === undefined) return ''
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.href
  } catch {
    return 'invalid URL'
  }
}
