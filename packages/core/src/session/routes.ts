/** Dispatches the requests under the route prefix to the session routes, by path and method. */
import { pageResponse } from './pages.js'

export interface SessionRoutes {
  login(request: Request, url: URL): Promise<Response>
  callback(request: Request, url: URL): Promise<Response>
  logout(request: Request): Promise<Response>
  backchannelLogout(request: Request): Promise<Response>
}

function methodNotAllowed(allow: string): Response {
  return new Response(null, { status: 405, headers: { allow, 'cache-control': 'no-store' } })
}

/** The route's answer, or `undefined` for a request that is not one of the session routes. */
export async function routeRequest(
  prefix: string,
  routes: SessionRoutes,
  request: Request,
): Promise<Response | undefined> {
  let url: URL
  try {
    url = new URL(request.url)
  } catch {
    return undefined
  }
  if (!url.pathname.startsWith(`${prefix}/`)) return undefined
  const route = url.pathname.slice(prefix.length)
  try {
    switch (route) {
      case '/login':
        return request.method === 'GET' ? await routes.login(request, url) : methodNotAllowed('GET')
      case '/callback':
        return request.method === 'GET'
          ? await routes.callback(request, url)
          : methodNotAllowed('GET')
      case '/logout':
        return request.method === 'GET' || request.method === 'POST'
          ? await routes.logout(request)
          : methodNotAllowed('GET, POST')
      case '/backchannel-logout':
        return request.method === 'POST'
          ? await routes.backchannelLogout(request)
          : methodNotAllowed('POST')
      default:
        return undefined
    }
  } catch {
    return pageResponse(500, {
      title: 'Something went wrong',
      paragraphs: ['The sign-in service hit an unexpected error. Please try again.'],
    })
  }
}
