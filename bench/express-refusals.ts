import type express from 'express'

/**
 * Answers an error passed on by middleware with its status and no log: the peer libraries pass
 * a refusal on as an error, which Express would otherwise log with its stack on every check.
 */
export function answerRefusals(app: express.Express): void {
  app.use(
    (
      error: { status?: number },
      _req: express.Request,
      res: express.Response,
      _next: express.NextFunction,
    ) => {
      res.status(error.status ?? 500).json({ error: 'unauthorized' })
    },
  )
}
