export { RedisSessionStore } from './store.js'
export { optionsFromEnv, DEFAULT_KEY_PREFIX } from './options.js'
export type { RedisNode, RedisSessionStoreOptions } from './options.js'
