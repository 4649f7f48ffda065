/**
 * `ssokit proxy` as a library: single sign-on in front of an application that knows nothing of
 * it, handing it the user's identity in request headers.
 *
 * @module
 */
export {
  CERN_ISSUER,
  DEFAULT_ASSERTION_HEADER,
  DEFAULT_PREFIX,
  loadProxyConfig,
  ProxyConfigError,
  type ConfigInput,
  type IdentityHeaderConfig,
  type ProxyConfig,
  type ProxySamlConfig,
} from './config.js'
export { ASSERTION_LIFETIME_S, ASSERTION_TYPE } from './assertion.js'
export { HEADER_PRESETS, type HeaderPresetName, type IdentityField } from './headers.js'
export type { RuleSpec } from './rules.js'
export { startProxy, type ProxyOptions, type RunningProxy } from './proxy.js'
