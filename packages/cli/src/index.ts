export { COMMANDS } from './commands.js'
export type { CommandEntry } from './commands.js'
export { UsageError } from './errors.js'
export type { Command, CommandContext } from './errors.js'
export { startDemo, startDemoApp, DemoStartError } from './demo/index.js'
export type { DemoOptions, RunningDemo, DemoAppOptions, RunningDemoApp } from './demo/index.js'
export {
  InvalidValue,
  choiceOption,
  flagOption,
  hostOption,
  integerOption,
  invalidOption,
  nameOption,
  parseOptions,
  pathOption,
  portOption,
  urlOption,
} from './options.js'
export type { FlagOption, OptionSpec, ParsedOptions, ValueOption } from './options.js'
export { ListenError, assertLocalhostFree, listenFailure } from './listen.js'
export { writePidFile } from './pid-file.js'
