/**
 * Where a browser request to the session routes comes from, for the routes that change a
 * session: a page of this application (or the user's own address bar), another site, or a
 * client that says nothing (a script, or a browser too old to send `Sec-Fetch-Site`).
 */

export type RequestSite = 'same-origin' | 'cross-site' | 'unknown'

export function requestSite(request: Request, publicOrigin: string): RequestSite {
  const fetchSite = request.headers.get('sec-fetch-site')?.trim().toLowerCase()
  if (fetchSite !== undefined) {
    // `none`: typed in the address bar, a bookmark, another application; no page asked for it.
    if (fetchSite === 'same-origin' || fetchSite === 'none') return 'same-origin'
    // `same-site` is a sibling host, as foreign to this origin's sessions as every other site.
    return 'cross-site'
  }
  // Browsers that predate Sec-Fetch-Site still send Origin on every cross-origin POST.
  const origin = request.headers.get('origin')
  if (origin === null) return 'unknown'
  return origin.trim() === publicOrigin ? 'same-origin' : 'cross-site'
}
