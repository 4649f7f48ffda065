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

import { SsoError } from '@ssokit/core/errors'

import { CREDENTIAL_VERSION, type Credential, type CredentialKey } from '../credential.js'
import { loadWriteFileAtomic } from '../lazy.js'
import type { Logger } from '../log.js'

// Loaded on the first lock, not with the module: reading a fresh token needs no lock, and that
// read is all `ssokit token` does on most calls (it must start fast).
const loadLockfile = () => import('proper-lockfile')

const DIRECTORY_MODE = 0o700
const FILE_MODE = 0o600
const SUFFIX = '.json'

/** A lock older than this is taken over: its process died without releasing it. */
const STALE_LOCK_MS = 20_000

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
   * taken over after `STALE_LOCK_MS`.
   */
  async withLock<T>(key: CredentialKey, task: () => Promise<T>): Promise<T> {
    await this.ready()
    const path = this.pathOf(key)
    let release: () => Promise<void>
    try {
      const { lock } = await loadLockfile()
      release = await lock(path, {
        realpath: false,
        lockfilePath: `${path}.lock`,
        stale: STALE_LOCK_MS,
        retries: { retries: 200, factor: 1.2, minTimeout: 20, maxTimeout: 200 },
        onCompromised: () => {
          this.#log('warning', `the lock of ${path} was taken over by another process`)
        },
      })
    } catch (error) {
      throw unsafe(`The credential file ${path} stays locked by another process.`, error)
    }
    try {
      return await task()
    } finally {
      await release().catch(() => undefined)
    }
  }
}
