/**
 * The 403 answer to a signed-in request that a rule refuses, saying what the rule requires: the
 * user can ask for the right role, and a script's author sees which claim to fix. Only the
 * rule's own requirement is named, never a role or claim the user holds.
 */
import type { ResponseParts } from '@ssokit/core'
import { pageHtml } from './pages.js'
import { AccessDenied, type Requirement } from './rules.js'

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function listed(values: readonly (string | number | boolean)[]): string {
  return values.map((value) => JSON.stringify(value)).join(', ')
}

/** One sentence: what the page requires. */
export function requirementText(requirement: Requirement): string {
  switch (requirement.kind) {
    case 'roles':
      return requirement.roles.length === 1
        ? `This page requires the role ${listed(requirement.roles)}.`
        : `This page requires every one of the roles ${listed(requirement.roles)}.`
    case 'groups':
      return requirement.groups.length === 1
        ? `This page requires membership of the group ${listed(requirement.groups)}.`
        : `This page requires membership of one of the groups ${listed(requirement.groups)}.`
    case 'claim':
      return requirement.values.length === 1
        ? `This page requires the claim ${JSON.stringify(requirement.claim)} to be ${listed(requirement.values)}.`
        : `This page requires the claim ${JSON.stringify(requirement.claim)} to be one of ${listed(requirement.values)}.`
  }
}

/** The JSON form of a requirement, under `required`. */
function requirementJson(requirement: Requirement): Record<string, unknown> {
  switch (requirement.kind) {
    case 'roles':
      return { roles: requirement.roles }
    case 'groups':
      return { any_group: requirement.groups }
    case 'claim':
      return { claim: requirement.claim, any_value: requirement.values }
  }
}

function isJson(parts: ResponseParts): boolean {
  const type = parts.headers['content-type']
  return typeof type === 'string' && type.startsWith('application/json')
}

/**
 * `parts` (the authenticator's 403, with its status and `WWW-Authenticate`) with a body that
 * names the unmet requirement; other answers unchanged.
 */
export function explainRefusal(error: unknown, parts: ResponseParts): ResponseParts {
  if (!(error instanceof AccessDenied) || parts.status !== 403) return parts
  const text = requirementText(error.requirement)
  if (isJson(parts)) {
    return {
      ...parts,
      body: JSON.stringify({
        error: 'role_required',
        message: text,
        required: requirementJson(error.requirement),
      }),
    }
  }
  return {
    ...parts,
    headers: {
      ...parts.headers,
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'",
    },
    body: pageHtml('Access denied', [
      "You are signed in, but your account does not meet this page's rule.",
      escapeHtml(text),
    ]),
  }
}
