/**
 * Dependencies that only some ways of signing in use (cookies, Kerberos, one-time codes), or
 * only writing the cache does (its lock and atomic writes), loaded on first use: a token read
 * from the cache, which is all most `ssokit token` calls do, never pays for them. Types are
 * imported statically with `import type`.
 */
export const loadToughCookie = () => import('tough-cookie')
export const loadOtpauth = () => import('otpauth')
export const loadWriteFileAtomic = async () => (await import('write-file-atomic')).default
export const loadLockfile = () => import('proper-lockfile')
