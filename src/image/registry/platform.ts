// Platforms: the host's, "--platform os/arch[/variant]", and picking a manifest from an index.
import type { Descriptor, Platform } from '../types';
import { TsrunError } from '../../runtime/errors';

const ARCH: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle',
};

/** The host's platform as OCI names it: linux/amd64, linux/arm64/v8, linux/arm/v7. */
export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: 'linux', architecture };
  if (architecture === 'arm64') p.variant = 'v8';
  if (architecture === 'arm') {
    const v = Number((process.config.variables as Record<string, unknown>).arm_version);
    p.variant = `v${Number.isFinite(v) && v >= 5 ? v : 7}`;
  }
  return p;
}

/** Normalises architecture aliases and default variants (aarch64 -> arm64, x86_64 -> amd64...). */
export function normalisePlatform(p: Platform): Platform {
  let arch = (p.architecture || '').toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  switch (arch) {
    case 'x86_64': case 'x86-64': arch = 'amd64'; break;
    case 'i386': case 'i686': arch = '386'; break;
    case 'aarch64': arch = 'arm64'; break;
    case 'armhf': arch = 'arm'; variant = variant ?? 'v7'; break;
    case 'armel': arch = 'arm'; variant = variant ?? 'v6'; break;
  }
  if (arch === 'arm64' && (variant === '8' || variant === undefined)) variant = 'v8';
  if (arch === 'arm' && variant === undefined) variant = 'v7';
  if (arch === 'arm' && variant && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (arch === 'amd64' && variant === 'v1') variant = undefined;
  const out: Platform = { os: (p.os || '').toLowerCase(), architecture: arch };
  if (variant) out.variant = variant;
  return out;
}

/** Parses "linux/amd64", "linux/arm/v7", "arm64" (os linux). */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.some((x) => !x) || parts.length > 3 || !/^[a-zA-Z0-9_./-]+$/.test(s.trim())) {
    throw new TsrunError(`invalid platform "${s}": want os/arch[/variant]`);
  }
  if (parts.length === 1) return normalisePlatform({ os: 'linux', architecture: parts[0] });
  const p: Platform = { os: parts[0], architecture: parts[1] };
  if (parts[2]) p.variant = parts[2];
  return normalisePlatform(p);
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Variants a platform can run, best first (arm v7 runs v6 and v5 images too). */
function acceptedVariants(want: Platform): (string | undefined)[] {
  if (want.architecture === 'arm') {
    const n = Number((want.variant ?? 'v7').slice(1));
    const out: (string | undefined)[] = [];
    for (let v = n; v >= 5; v--) out.push(`v${v}`);
    return out;
  }
  if (want.architecture === 'arm64') return ['v8', undefined];
  if (want.architecture === 'amd64') return want.variant ? [want.variant, 'v3', 'v2', undefined].filter((v, i, a) => a.indexOf(v) === i && (v === undefined || v <= want.variant!)) : [undefined];
  return [want.variant, undefined];
}

/** Picks the entry of an index for a platform, as containerd's matcher does; Docker's error when none. */
export function selectManifest(entries: Descriptor[], want: Platform): Descriptor {
  const w = normalisePlatform(want);
  const variants = acceptedVariants(w);
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const d of entries) {
    if (!d.platform) continue;
    const p = normalisePlatform(d.platform);
    if (p.os !== w.os || p.architecture !== w.architecture) continue;
    const rank = variants.indexOf(p.variant);
    if (rank < 0) continue;
    if (rank < bestRank) { best = d; bestRank = rank; }
  }
  if (!best) throw new TsrunError(`no matching manifest for ${formatPlatform(w)} in the manifest list entries`);
  return best;
}
