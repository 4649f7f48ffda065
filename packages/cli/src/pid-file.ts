/**
 * `--pid-file`: lets a script stop a server started in the background. `npx` and `npm exec`
 * do not pass SIGTERM on to the process they started, so their own pid is not enough.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Writes this process's pid to `file`; the returned function removes it again if still ours. */
export async function writePidFile(file: string): Promise<() => Promise<void>> {
  const pid = String(process.pid)
  try {
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, `${pid}\n`, { mode: 0o644 })
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    throw new Error(`--pid-file ${file}: cannot be written (${reason})`, { cause })
  }
  return async () => {
    const current = await readFile(file, 'utf8').catch(() => '')
    if (current.trim() === pid) await rm(file, { force: true })
  }
}
