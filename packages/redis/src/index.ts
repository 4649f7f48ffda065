export { RedisSessionStore } from './store.js'
export { optionsFromEnv, DEFAULT_KEY_PREFIX } from './options.js'
export type { RedisNode, RedisSessionCacheOptions, RedisSessionStoreOptions } from './options.js'
