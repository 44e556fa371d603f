// OCI hooks run by tsrun itself (prestart, createRuntime, poststart, poststop):
// the state on stdin, the hook's own args and env, an optional timeout.
import type { Hook } from './spec';
import { TsrunError } from './errors';

export function runHooks(kind: string, hooks: Hook[] | undefined, state: object): void {
  if (!hooks?.length) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('child_process') as typeof import('child_process');
  hooks.forEach((h, i) => {
    const args = h.args ?? [h.path];
    const r = spawnSync(h.path, args.slice(1), {
      argv0: args[0],
      input: JSON.stringify(state),
      env: Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
      timeout: h.timeout ? h.timeout * 1000 : undefined,
      stdio: ['pipe', 'inherit', 'pipe'],
    });
    const where = `${kind} hook #${i} (${h.path})`;
    if (r.error) throw new TsrunError(`${where}: ${(r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `timed out after ${h.timeout}s` : r.error.message}`);
    if (r.status !== 0) {
      const err = (r.stderr?.toString() ?? '').trim().split('\n').pop();
      throw new TsrunError(`${where}: ${r.signal ? 'killed by ' + r.signal : 'exit status ' + r.status}${err ? ': ' + err : ''}`);
    }
  });
}
