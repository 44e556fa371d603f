// Errors that the CLI prints as one line (the stack only with --debug).
export class TsrunError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** A failure inside the container set-up, naming its step of the plan. */
export class StepError extends TsrunError {
  constructor(readonly step: number, readonly total: number, readonly text: string, readonly errno: number, reason: string, exitCode = 1) {
    super(`step ${step}/${total}: ${text}: ${reason}`, exitCode);
  }
}

export function fsError(op: string, file: string, e: unknown): TsrunError {
  const err = e as NodeJS.ErrnoException;
  const reason = err && err.code ? `${err.code === 'ENOENT' ? 'no such file or directory' : err.message.replace(/^[A-Z]+: /, '').replace(/, .*$/, '')}` : String(e);
  return new TsrunError(`${op} ${file}: ${reason}`);
}
