// Timing for bench/net.sh (it runs this inside a throwaway network namespace).
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const root = opt('--root'), image = opt('--image'), rounds = Number(opt('--rounds', '30'));
const tsrun = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tsrun');
const env = { ...process.env, TSRUN_TRACE: '1' };
delete env.NODE_EXTRA_CA_CERTS;
// TSRUN_TRACE marks around the network's work inside tsrun: less noisy than wall clock on a busy box
const phase = Object.fromEntries(['bridge', 'bridge -p'].map((k) => [k, []]));
const netMs = (stderr) => {
  let sum = 0, open;
  for (const m of stderr.matchAll(/\[trace ([\d.]+) ms\] network: (attach|attached|detach|detached)\n/g)) {
    if (m[2] === 'attach' || m[2] === 'detach') open = Number(m[1]);
    else if (open !== undefined) { sum += Number(m[1]) - open; open = undefined; }
  }
  return sum;
};
const variants = {
  'none': ['--network', 'none'],
  'bridge': ['--network', 'bridge'],
  'bridge -p': ['--network', 'bridge', '-p', '8080:80'],
};
const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
const failed = Object.fromEntries(Object.keys(variants).map((k) => [k, 0]));
const once = (flags) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(tsrun, ['--root', root, 'run', '--rm', ...flags, image, 'true'], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) process.stderr.write(`${flags.join(' ')}: exit ${r.status}: ${r.stderr.trim()}\n`);
  return r.status === 0 ? [ms, netMs(r.stderr)] : undefined;
};
for (const f of Object.values(variants)) for (let i = 0; i < 3; i++) once(f); // warm-up (and the bridge made once)
const names = Object.keys(variants);
for (let i = 0; i < rounds; i++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(i + k) % names.length];
    const res = once(variants[name]);
    if (res === undefined) { failed[name]++; continue; }
    times[name].push(res[0]);
    phase[name]?.push(res[1]);
  }
}
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))] ?? NaN; };
const pad = (s, n) => String(s).padStart(n);
process.stdout.write(`variant              median       p10       p90    n  failed\n`);
for (const n of names) process.stdout.write(`run --rm ${n.padEnd(10)} ${pad(q(times[n], 0.5).toFixed(1), 7)} ${pad(q(times[n], 0.1).toFixed(1), 9)} ${pad(q(times[n], 0.9).toFixed(1), 9)} ${pad(times[n].length, 4)}  ${failed[n]}\n`);
process.stdout.write(`(milliseconds, wall clock from spawn to exit)\n\n`);
for (const n of Object.keys(phase)) process.stdout.write(`inside tsrun, attach + detach (${n}): median ${q(phase[n], 0.5).toFixed(1)} ms, p10 ${q(phase[n], 0.1).toFixed(1)}, p90 ${q(phase[n], 0.9).toFixed(1)}\n`);
process.stdout.write(`bridge - none: ${(q(times.bridge, 0.5) - q(times.none, 0.5)).toFixed(1)} ms   bridge -p - none: ${(q(times['bridge -p'], 0.5) - q(times.none, 0.5)).toFixed(1)} ms (medians; target ≤ 15 ms)\n`);
