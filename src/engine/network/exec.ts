// The network tools tsrun drives: `ip -batch`, `iptables-restore --noflush`, `unshare --net=FILE`.
// Every command runs in tsrun's own network namespace (whatever namespace tsrun was started in is
// "the host"), except the batches given a namespace file.
import { spawnSync } from 'child_process';
import { TsrunError } from '../../runtime/errors';
import { trace } from '../../runtime/trace';

export function tool(cmd: string, args: string[], input?: string, what?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  trace(`net: ${cmd} ${args.slice(0, 3).join(' ')}`);
  if (r.error) throw new TsrunError(`${what ?? cmd}: ${cmd}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found (install iproute2 / iptables)' : r.error.message}`, 125);
  if (r.status !== 0) {
    const err = (r.stderr || r.stdout || '').trim().split('\n').filter(Boolean).slice(0, 3).join('; ');
    throw new TsrunError(`${what ?? cmd}: ${cmd} ${args.join(' ')}: ${err || `exit status ${r.status}`}`, 125);
  }
  return r.stdout;
}

/** `ip -batch -` (in a netns file when given: `unshare --net=FILE` creates it, `nsenter` enters it). */
export function ipBatch(lines: string[], o: { create?: string; enter?: string; force?: boolean; what?: string } = {}): void {
  if (!lines.length) return;
  const ip = ['ip', ...(o.force ? ['-force'] : []), '-batch', '-'];
  const input = lines.join('\n') + '\n';
  if (o.create) tool('unshare', [`--net=${o.create}`, ...ip], input, o.what);
  else if (o.enter) tool('nsenter', [`--net=${o.enter}`, ...ip], input, o.what);
  else tool(ip[0], ip.slice(1), input, o.what);
}

/** Like ipBatch but tolerant: each line may fail (deleting what may already be gone). */
export function ipBatchQuiet(lines: string[]): void {
  if (!lines.length) return;
  spawnSync('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
  trace('net: ip -force -batch (delete)');
}

export function ipJSON<T>(args: string[]): T {
  return JSON.parse(tool('ip', ['-j', ...args]) || '[]') as T;
}
