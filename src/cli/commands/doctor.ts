// `tsrun doctor [--format json]`: checks the host (see src/engine/hostcheck.ts) and prints one line
// per check, then a summary. Exit 0 when nothing FAILs, 1 otherwise. It only reads the host: the
// fix of a warn/FAIL line is printed, never run.
//
// TSRUN_DOCTOR_NATIVE_DIR=DIR looks for libtsrun.so and tsrun-supervisor in DIR instead of
// <repo>/native/build (the tests use it to provoke a FAIL).
import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { runChecks, type Check } from '../../engine/hostcheck';

const LABEL: Record<Check['status'], string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };

export function formatCheck(c: Check): string {
  const detail = c.detail ? `: ${c.detail}` : '';
  return `${LABEL[c.status]} ${c.name}${detail}${c.status !== 'ok' && c.fix ? ` — fix: ${c.fix}` : ''}`;
}

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['format'], alias: { f: 'format' } }, 'doctor');
  const format = str(p, 'format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw new TsrunError(`doctor: --format is text or json, not "${format}"`);
  if (p.args.length) throw new TsrunError(`doctor: takes no arguments`);
  const t0 = performance.now();
  const checks = runChecks({ root: g.root });
  const failed = checks.filter((c) => c.status === 'fail').length;
  if (format === 'json') {
    process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
  } else {
    const warned = checks.filter((c) => c.status === 'warn').length;
    const ms = performance.now() - t0;
    process.stdout.write(checks.map((c) => formatCheck(c) + '\n').join('') +
      `${checks.length} checks: ${checks.length - warned - failed} ok, ${warned} warning${warned === 1 ? '' : 's'}, ${failed} failed (${ms.toFixed(0)} ms)` +
      `${failed ? ': tsrun will not work until the FAIL lines are fixed' : warned ? ': tsrun works; the warnings limit some features' : ': ready'}\n`);
  }
  return failed ? 1 : 0;
}
