/**
 * The credential cache on disk: one JSON file per issuer, client, grant, audience, scopes and
 * subject, in a directory only the user can enter. Files are created `0600` (the mode is given
 * at creation, and kept under any umask), replaced by an atomic rename, never read or written
 * through a symlink, and guarded by a lock so that only one process at a time spends a refresh
 * token.
 */
import { createHash } from 'node:crypto'
import { constants, promises as fs } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { SsoError } from '@ssokit/core/errors'

import { CREDENTIAL_VERSION, type Credential, type CredentialKey } from '../credential.js'
import { loadLockfile, loadWriteFileAtomic } from '../lazy.js'
import type { Logger } from '../log.js'

const DIRECTORY_MODE = 0o700
const FILE_MODE = 0o600
const SUFFIX = '.json'

/** A lock older than this is taken over: its process died without releasing it. */
const STALE_LOCK_MS = 20_000
/** Tries at taking a held lock, and the waits between them (about 40 s in all). */
const LOCK_ATTEMPTS = 200
const LOCK_FIRST_WAIT_MS = 20
const LOCK_MAX_WAIT_MS = 200
/** Beside `<file>`: who holds its lock (`{ pid, purpose }`), no secret. */
const HOLDER_SUFFIX = '.holder'

interface LockHolder {
  readonly pid: number
  readonly purpose: 'renewal' | 'login'
}

/** Whether a process runs (one of another user's counts: `EPERM`). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface CachedEntry {
  readonly file: string
  /** `undefined` when the file is not a credential of ours (left alone, reported). */
  readonly credential: Credential | undefined
}

function unsafe(message: string, cause?: unknown): SsoError {
  return new SsoError('credential_cache_unsafe', message, cause === undefined ? {} : { cause })
}

function slug(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 40)
}

/** The file name of a key: readable parts, then a hash of the whole key. */
export function fileNameOf(key: CredentialKey): string {
  const hash = createHash('sha256')
    .update(
      JSON.stringify([key.issuer, key.clientId, key.grant, key.audience, key.scope, key.subject]),
    )
    .digest('hex')
    .slice(0, 16)
  const audience = key.audience === undefined ? '' : `--${slug(key.audience)}`
  return `${slug(key.clientId)}${audience}-${hash}${SUFFIX}`
}

function sameKey(a: CredentialKey, b: CredentialKey): boolean {
  return (
    a.issuer === b.issuer &&
    a.clientId === b.clientId &&
    a.grant === b.grant &&
    a.audience === b.audience &&
    a.scope === b.scope &&
    a.subject === b.subject
  )
}

function isCredential(value: unknown): value is Credential {
  if (typeof value !== 'object' || value === null) return false
  const c = value as Partial<Credential>
  return (
    c.version === CREDENTIAL_VERSION &&
    typeof c.accessToken === 'string' &&
    typeof c.obtainedAt === 'number' &&
    typeof c.renewAt === 'number' &&
    typeof c.key === 'object' &&
    typeof c.key.issuer === 'string' &&
    typeof c.key.clientId === 'string'
  )
}

/** Without `undefined` members, which JSON drops: a read credential then equals a written one. */
function fromJson(value: Credential): Credential {
  const key = value.key
  return Object.freeze({
    ...value,
    key: Object.freeze({
      issuer: key.issuer,
      clientId: key.clientId,
      grant: key.grant,
      audience: key.audience ?? undefined,
      scope: key.scope ?? undefined,
      subject: key.subject ?? undefined,
    }),
    expiresAt: value.expiresAt ?? undefined,
    refreshToken: value.refreshToken ?? undefined,
    refreshExpiresAt: value.refreshExpiresAt ?? undefined,
    subjectName: value.subjectName ?? undefined,
    username: value.username ?? undefined,
  })
}

export class CredentialCache {
  readonly directory: string
  readonly #log: Logger
  #ready: Promise<void> | undefined

  constructor(directory: string, log: Logger) {
    this.directory = directory
    this.#log = log
  }

  pathOf(key: CredentialKey): string {
    return join(this.directory, fileNameOf(key))
  }

  /** Creates the directory `0700`, or checks the existing one: a real directory of this user. */
  ready(): Promise<void> {
    this.#ready ??= this.#prepare().catch((error: unknown) => {
      this.#ready = undefined
      throw error
    })
    return this.#ready
  }

  async #prepare(): Promise<void> {
    try {
      await fs.mkdir(this.directory, { recursive: true, mode: DIRECTORY_MODE })
    } catch (error) {
      throw unsafe('The credential cache directory cannot be created.', error)
    }
    const stat = await fs.lstat(this.directory)
    if (stat.isSymbolicLink() || !stat.isDirectory()) {
      throw unsafe(
        `The credential cache ${this.directory} is a symlink or not a directory; remove it or set SSOKIT_HOME.`,
      )
    }
    if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
      throw unsafe(`The credential cache ${this.directory} belongs to another user.`)
    }
    if ((stat.mode & 0o077) !== 0) {
      await fs.chmod(this.directory, DIRECTORY_MODE)
      this.#log('warning', `tightened the credential cache directory ${this.directory} to 0700`)
    }
  }

  /** The file's credential; `undefined` when there is none or it is unreadable as one. */
  async read(key: CredentialKey): Promise<Credential | undefined> {
    await this.ready()
    const credential = await this.#readFile(this.pathOf(key))
    return credential !== undefined && sameKey(credential.key, key) ? credential : undefined
  }

  async #readFile(path: string): Promise<Credential | undefined> {
    let handle: fs.FileHandle
    try {
      handle = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return undefined
      if (code === 'ELOOP') {
        throw unsafe(`The credential file ${path} is a symlink; it was not read. Remove it.`)
      }
      throw unsafe(`The credential file ${path} cannot be read.`, error)
    }
    try {
      const stat = await handle.stat()
      if (!stat.isFile()) throw unsafe(`The credential file ${path} is not a regular file.`)
      if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
        throw unsafe(`The credential file ${path} belongs to another user; it was not read.`)
      }
      if ((stat.mode & 0o077) !== 0) {
        await handle.chmod(FILE_MODE)
        this.#log('warning', `tightened the credential file ${path} to 0600`)
      }
      const text = await handle.readFile('utf8')
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        this.#log('warning', `ignored the credential file ${path}: it is not JSON`)
        return undefined
      }
      if (!isCredential(value)) {
        this.#log('warning', `ignored the credential file ${path}: it is not an ssokit credential`)
        return undefined
      }
      return fromJson(value)
    } finally {
      await handle.close()
    }
  }

  /** Replaces the file atomically: a temporary file in the same directory, fsync, rename. */
  async write(credential: Credential): Promise<void> {
    await this.ready()
    const path = this.pathOf(credential.key)
    await this.#refuseSymlink(path)
    try {
      const writeFileAtomic = await loadWriteFileAtomic()
      await writeFileAtomic(path, `${JSON.stringify(credential, null, 2)}\n`, {
        mode: FILE_MODE,
        fsync: true,
      })
    } catch (error) {
      throw unsafe(`The credential file ${path} cannot be written.`, error)
    }
  }

  async delete(key: CredentialKey): Promise<void> {
    await this.ready()
    await this.deleteFile(fileNameOf(key))
  }

  /** Deletes one file of the cache by name (what `list` returned). */
  async deleteFile(file: string): Promise<void> {
    if (file.includes('/') || !file.endsWith(SUFFIX)) return
    await fs.rm(join(this.directory, file), { force: true })
  }

  async #refuseSymlink(path: string): Promise<void> {
    try {
      if ((await fs.lstat(path)).isSymbolicLink()) {
        throw unsafe(`The credential file ${path} is a symlink; it was not written. Remove it.`)
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  /** Every credential file, oldest name first; a missing directory is an empty cache. */
  async list(): Promise<CachedEntry[]> {
    let names: string[]
    try {
      names = await fs.readdir(this.directory)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw unsafe(`The credential cache ${this.directory} cannot be read.`, error)
    }
    await this.ready()
    const entries: CachedEntry[] = []
    for (const file of names.filter((name) => name.endsWith(SUFFIX)).sort()) {
      entries.push({ file, credential: await this.#readFile(join(this.directory, file)) })
    }
    return entries
  }

  /**
   * Runs `task` holding the key's lock, across processes. A lock left by a process that died is
   * taken over after `STALE_LOCK_MS`. While it is held, `<file>.holder` names this process and
   * what it is doing, so that another one kept waiting can say why.
   */
  async withLock<T>(key: CredentialKey, task: () => Promise<T>): Promise<T> {
    await this.ready()
    const path = this.pathOf(key)
    const release = await this.#acquire(path)
    try {
      await this.#writeHolder(path, 'renewal')
      return await task()
    } finally {
      await fs.rm(`${path}${HOLDER_SUFFIX}`, { force: true }).catch(() => undefined)
      await release().catch(() => undefined)
    }
  }

  /** Notes that the lock of `key`, held by this process, now waits on a person logging in. */
  async markLogin(key: CredentialKey): Promise<void> {
    await this.#writeHolder(this.pathOf(key), 'login')
  }

  async #acquire(path: string): Promise<() => Promise<void>> {
    const { lock } = await loadLockfile()
    let wait = LOCK_FIRST_WAIT_MS
    for (let attempt = 1; ; attempt++) {
      try {
        return await lock(path, {
          realpath: false,
          lockfilePath: `${path}.lock`,
          stale: STALE_LOCK_MS,
          onCompromised: () => {
            this.#log('warning', `the lock of ${path} was taken over by another process`)
          },
        })
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || attempt >= LOCK_ATTEMPTS) {
          throw unsafe(`The credential file ${path} stays locked by another process.`, error)
        }
      }
      // A renewal takes a moment and is worth waiting for; a login waits on a person, for
      // minutes: say so at once instead of failing on a timeout later.
      const holder = await this.#readHolder(path)
      if (holder?.purpose === 'login' && holder.pid !== process.pid && isAlive(holder.pid)) {
        throw new SsoError(
          'login_in_progress',
          `Another login for this credential is in progress (process ${holder.pid}): finish it there, or wait for it to end, then try again.`,
        )
      }
      await sleep(wait)
      wait = Math.min(LOCK_MAX_WAIT_MS, wait * 1.2)
    }
  }

  async #writeHolder(path: string, purpose: LockHolder['purpose']): Promise<void> {
    const holder: LockHolder = { pid: process.pid, purpose }
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW
    try {
      const handle = await fs.open(`${path}${HOLDER_SUFFIX}`, flags, FILE_MODE)
      try {
        await handle.writeFile(JSON.stringify(holder))
      } finally {
        await handle.close()
      }
    } catch (error) {
      // Only a better message depends on it: the lock itself is what protects the file.
      this.#log('debug', `the lock holder note of ${path} was not written: ${String(error)}`)
    }
  }

  async #readHolder(path: string): Promise<LockHolder | undefined> {
    try {
      const handle = await fs.open(
        `${path}${HOLDER_SUFFIX}`,
        constants.O_RDONLY | constants.O_NOFOLLOW,
      )
      try {
        const value: unknown = JSON.parse(await handle.readFile('utf8'))
        if (typeof value !== 'object' || value === null) return undefined
        const { pid, purpose } = value as Record<string, unknown>
        if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined
        return purpose === 'login' || purpose === 'renewal' ? { pid, purpose } : undefined
      } finally {
        await handle.close()
      }
    } catch {
      return undefined
    }
  }
}
