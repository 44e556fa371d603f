// Seccomp, capabilities, no_new_privs, rlimits, user/groups, umask — as the probe sees them.
import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  rt, newRoot, makeBundle, uniqueId, assertClean, describe,
} from './helpers/index.mjs';

async function runOnce(t, opts) {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, opts);
  const res = await r(['run', '--bundle', b.dir, id], { timeout: 30_000 });
  assertClean(t, { root, id, bundle: b.dir });
  return res;
}

const ARCHES = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
}[process.arch];

function seccomp(rule) {
  return { defaultAction: 'SCMP_ACT_ALLOW', architectures: ARCHES, syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', ...rule }] };
}

// /dev/shm is a writable tmpfs even with a read-only root, so mkdir there succeeds unless filtered.
const MKDIR = ['/bin/sh', '-c', '/probe mkdir /dev/shm/a; /probe syscall-errno mkdirat; /probe syscall-errno getpid; /probe seccomp'];

test('without seccomp, mkdir works (control)', async t => {
  const res = await runOnce(t, { args: MKDIR });
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, 'ok\nEROFS\nok\n0\n', 'raw mkdirat of /tmp/x on the read-only root fails EROFS (not filtered)');
});

test('seccomp SCMP_ACT_ERRNO on mkdir/mkdirat → EPERM', async t => {
  const res = await runOnce(t, { args: MKDIR, mutate: c => { c.linux.seccomp = seccomp({}); } });
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, 'EPERM\nEPERM\nok\n2\n');
});

test('seccomp errnoRet is honoured', async t => {
  const res = await runOnce(t, { args: MKDIR, mutate: c => { c.linux.seccomp = seccomp({ errnoRet: 13 }); } });
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, 'EACCES\nEACCES\nok\n2\n');
});

// Capability bits: KILL=5, NET_BIND_SERVICE=10, SYS_ADMIN=21, AUDIT_WRITE=29.
const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
];
const capMask = names => names.reduce((m, n) => m | (1n << BigInt(ALL_CAPS.indexOf(n))), 0n);
const hex = v => v.toString(16).padStart(16, '0');

function parseCaps(stdout) {
  return Object.fromEntries(stdout.trim().split('\n').map(l => l.split(/:\s*/)));
}

test('default capabilities are exactly runc spec\'s three; no CAP_SYS_ADMIN → mount fails EPERM', async t => {
  const res = await runOnce(t, { args: ['/bin/sh', '-c', '/probe caps; /probe mount-tmpfs /mnt'] });
  t.is(res.code, 0, describe(res));
  const lines = res.stdout.trim().split('\n');
  const caps = parseCaps(lines.slice(0, -1).join('\n'));
  const want = hex(capMask(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']));
  t.is(want, '0000000020000420');
  t.is(caps.CapBnd, want);
  t.is(caps.CapEff, want);
  t.is(caps.CapPrm, want);
  t.is(lines.at(-1), 'EPERM');
});

// The host's own bounding set (a sandbox may lack some, e.g. CAP_SYS_RESOURCE).
const HOST_BND = BigInt('0x' + readFileSync('/proc/self/status', 'utf8').match(/^CapBnd:\s*([0-9a-f]+)/m)[1]);

test('every capability except CAP_SYS_ADMIN → mount fails EPERM', async t => {
  const caps = ALL_CAPS.filter((c, i) => c !== 'CAP_SYS_ADMIN' && (HOST_BND & (1n << BigInt(i))));
  const res = await runOnce(t, {
    args: ['/bin/sh', '-c', '/probe caps; /probe mount-tmpfs /mnt'],
    mutate: c => { c.process.capabilities = { bounding: caps, effective: caps, permitted: caps }; },
  });
  t.is(res.code, 0, describe(res));
  const lines = res.stdout.trim().split('\n');
  const got = parseCaps(lines.slice(0, -1).join('\n'));
  t.is(BigInt('0x' + got.CapEff) & (1n << 21n), 0n, 'CAP_SYS_ADMIN must be absent');
  t.is(BigInt('0x' + got.CapEff) & (1n << 0n), 1n, 'CAP_CHOWN must be present');
  t.is(lines.at(-1), 'EPERM');
});

test('with CAP_SYS_ADMIN, mounting a tmpfs inside works', async t => {
  const res = await runOnce(t, {
    args: ['/probe', 'mount-tmpfs', '/mnt'],
    mutate: c => {
      for (const set of ['bounding', 'effective', 'permitted']) c.process.capabilities[set].push('CAP_SYS_ADMIN');
    },
  });
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, 'ok\n');
});

test('noNewPrivileges is applied (and can be turned off)', async t => {
  const on = await runOnce(t, { args: ['/probe', 'nnp'] });
  t.is(on.stdout, '1\n', describe(on));
  const off = await runOnce(t, { args: ['/probe', 'nnp'], mutate: c => { c.process.noNewPrivileges = false; } });
  t.is(off.stdout, '0\n', describe(off));
});

test('rlimits, user, additionalGids and umask', async t => {
  const res = await runOnce(t, {
    args: ['/bin/sh', '-c', '/probe rlimit NOFILE; /probe rlimit RLIMIT_CORE; /probe id; /probe umask'],
    mutate: c => {
      c.process.rlimits.push({ type: 'RLIMIT_CORE', soft: 1024, hard: 2048 });
      c.process.user = { uid: 1000, gid: 1000, additionalGids: [5, 65534], umask: 0o027 };
    },
  });
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, '1024 1024\n1024 2048\nuid=1000 gid=1000 groups=5,65534\n0027\n');
});
