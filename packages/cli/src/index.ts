export { COMMANDS } from './commands.js'
export type { CommandEntry } from './commands.js'
export { UsageError } from './errors.js'
export type { Command, CommandContext } from './errors.js'
