/**
 * The schema of `rules` in the configuration file, and its frozen result. Kept apart from the
 * rest of the configuration so that the rule language can grow without touching it.
 */
import { claimPathProblem } from '@ssokit/core'
import { z } from 'zod'
import { patternProblem, type ClaimValue, type RuleSpec } from './rules.js'

const name = (expected: string) =>
  z
    .string({ error: `must be ${expected}` })
    .trim()
    .min(1, { error: `must be ${expected}` })

const CLAIM_VALUE_ERROR = 'must be a string, number or boolean, or a list of them'
const claimValue = z.union([z.string(), z.number(), z.boolean()], { error: CLAIM_VALUE_ERROR })

const ruleSchema = z
  .object({
    path: z.string({ error: 'must be a path such as /public' }).superRefine((p, ctx) => {
      const problem = patternProblem(p)
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
    }),
    public: z.boolean({ error: 'must be true or false' }).optional(),
    roles: z.array(name('a role name'), { error: 'must be a list of role names' }).optional(),
    groups: z
      .array(name('a group name'), { error: 'must be a list of group names' })
      .min(1, { error: 'must list at least one group' })
      .optional(),
    claims: z
      .record(
        z.string(),
        z.union(
          [
            claimValue,
            z.array(claimValue, { error: CLAIM_VALUE_ERROR }).min(1, {
              error: 'must list at least one accepted value',
            }),
          ],
          { error: CLAIM_VALUE_ERROR },
        ),
        { error: 'must map claim names to the values accepted' },
      )
      // Checked here rather than as the record's key schema, so the error names the claim.
      .superRefine((claims, ctx) => {
        for (const claim of Object.keys(claims)) {
          const problem = claimPathProblem(claim)
          if (problem !== undefined) {
            ctx.addIssue({ code: 'custom', path: [claim], message: problem })
          }
        }
      })
      .optional(),
  })
  .strict()
  .refine(
    (r) =>
      !(
        r.public === true &&
        ((r.roles?.length ?? 0) > 0 ||
          r.groups !== undefined ||
          Object.keys(r.claims ?? {}).length > 0)
      ),
    { error: 'cannot be public and require roles, groups or claims' },
  )

export const rulesSchema = z.array(ruleSchema, { error: 'must be a list of rules' })

type ParsedRule = z.infer<typeof ruleSchema>

/** A validated rule, copied and frozen: nothing the caller holds can change it later. */
export function frozenRule(rule: ParsedRule): RuleSpec {
  const claims = rule.claims
  return Object.freeze({
    path: rule.path,
    ...(rule.public === undefined ? {} : { public: rule.public }),
    ...(rule.roles === undefined ? {} : { roles: Object.freeze([...rule.roles]) }),
    ...(rule.groups === undefined ? {} : { groups: Object.freeze([...rule.groups]) }),
    ...(claims === undefined
      ? {}
      : {
          claims: Object.freeze(
            Object.fromEntries(
              Object.entries(claims).map(
                ([claim, value]): [string, ClaimValue | readonly ClaimValue[]] => [
                  claim,
                  Array.isArray(value) ? Object.freeze([...value]) : value,
                ],
              ),
            ),
          ),
        }),
  })
}
