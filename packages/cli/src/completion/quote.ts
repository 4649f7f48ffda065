/** Text as one single-quoted word for bash and zsh: `it's` becomes `'it'\''s'`. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`
}

/** Text as one single-quoted word for fish, where `\` and `'` are escaped inside the quotes. */
export function fishQuote(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`
}
