// More of config.json: cgroup limits as files on the host, v1 device rules, joining namespaces by
// path, domainname and sysctl, the hooks that run inside the container, rootfsPropagation.
import test from 'ava';
import { readFileSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  rt, newRoot, makeBundle, uniqueId, assertClean, getState, waitStatus, describe, readlinkNs, cgroupMounts, cgroupDirOf, tempDir,
} from './helpers/index.mjs';

const MiB = 1024 * 1024;

test('cpu, cpuset, memory reservation, pids and block IO weight reach the cgroup files', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, c => {
    c.linux.resources = {
      ...c.linux.resources,
      memory: { limit: 64 * MiB, reservation: 32 * MiB },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' },
      pids: { limit: 42 },
      blockIO: { weight: 300 },
    };
  });
  t.is((await r(['run', '-d', '--bundle', b.dir, id])).code, 0);
  await waitStatus(r, id, 'running');
  const { pid } = await getState(r, id);
  const v2 = cgroupMounts().some(m => m.version === 2 && m.mnt === '/sys/fs/cgroup');
  const read = (ctrl, file) => readFileSync(join(cgroupDirOf(pid, v2 ? '' : ctrl), file), 'utf8').trim();
  if (v2) {
    t.is(read('', 'memory.max'), String(64 * MiB));
    t.is(read('', 'memory.low'), String(32 * MiB));
    t.is(read('', 'cpu.max'), '50000 100000');
    t.is(read('', 'cpuset.cpus'), '0');
    t.is(read('', 'pids.max'), '42');
  } else {
    t.is(read('memory', 'memory.limit_in_bytes'), String(64 * MiB));
    t.is(read('memory', 'memory.soft_limit_in_bytes'), String(32 * MiB));
    t.is(read('cpu', 'cpu.shares'), '512');
    t.is(read('cpu', 'cpu.cfs_quota_us'), '50000');
    t.is(read('cpu', 'cpu.cfs_period_us'), '100000');
    t.is(read('cpuset', 'cpuset.cpus'), '0');
    t.is(read('pids', 'pids.max'), '42');
    const blkio = cgroupDirOf(pid, 'blkio');
    const wfile = ['blkio.weight', 'blkio.bfq.weight'].find(f => existsSync(join(blkio, f)));
    if (wfile) t.regex(readFileSync(join(blkio, wfile), 'utf8'), /300/);
  }
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});

test('cgroup v1 device rules: a device outside the allow-list cannot be opened', async t => {
  const v1devices = cgroupMounts().find(m => m.version === 1 && m.controllers.includes('devices'));
  if (!v1devices) return t.pass('no v1 devices controller on this host (v2 device filtering needs eBPF)');
  const root = newRoot(t);
  const r = rt(root);
  const script = 'mknod /tmp/lc c 10 237 && { ( : < /tmp/lc ) 2>/dev/null && echo open-ok || echo open-failed; }';
  const withCaps = c => {
    c.root.readonly = false;
    for (const k of ['bounding', 'effective', 'permitted']) c.process.capabilities[k].push('CAP_MKNOD');
  };
  // loop-control (10:237) is not in the default allow-list: denied ...
  const id = uniqueId();
  const b = await makeBundle(t, { args: ['/bin/sh', '-c', script], mutate: c => { withCaps(c); c.linux.resources.devices = [{ allow: false, access: 'rwm' }]; } });
  const res = await r(['run', '--bundle', b.dir, id]);
  t.regex(res.stdout, /open-failed/, describe(res));
  assertClean(t, { root, id, bundle: b.dir });
  // ... and allowed when a rule says so (control: the test can tell the difference)
  const id2 = uniqueId();
  const b2 = await makeBundle(t, { args: ['/bin/sh', '-c', script], mutate: c => {
    withCaps(c);
    c.linux.resources.devices = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 237, access: 'rwm' }];
  } });
  const res2 = await r(['run', '--bundle', b2.dir, id2]);
  t.regex(res2.stdout, /open-ok/, describe(res2));
  assertClean(t, { root, id: id2, bundle: b2.dir });
});

test('cgroup v1 device rules: linux.devices makes the node, but opening it takes a rule (as runc)', async t => {
  const v1devices = cgroupMounts().find(m => m.version === 1 && m.controllers.includes('devices'));
  if (!v1devices) return t.pass('no v1 devices controller on this host (v2 device filtering needs eBPF)');
  const root = newRoot(t);
  const r = rt(root);
  const script = 'ls -l /dev/lc && { ( : < /dev/lc ) 2>/dev/null && echo open-ok || echo open-failed; }';
  const node = { type: 'c', path: '/dev/lc', major: 10, minor: 237, fileMode: 0o600, uid: 0, gid: 0 };
  for (const [rules, want] of [[[], /open-failed/], [[{ allow: true, type: 'c', major: 10, minor: 237, access: 'r' }], /open-ok/]]) {
    const id = uniqueId();
    const b = await makeBundle(t, { args: ['/bin/sh', '-c', script], mutate: c => { c.linux.devices = [node]; c.linux.resources.devices = [{ allow: false, access: 'rwm' }, ...rules]; } });
    const res = await r(['run', '--bundle', b.dir, id]);
    t.regex(res.stdout, /^crw------- .* 10, *237 .*\/dev\/lc\n/, describe(res));
    t.regex(res.stdout, want, describe(res));
    assertClean(t, { root, id, bundle: b.dir });
  }
});

test('a namespace given by path is joined: two containers share a network and IPC namespace', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const a = uniqueId(), bId = uniqueId();
  const ba = await makeBundle(t);
  t.is((await r(['run', '-d', '--bundle', ba.dir, a])).code, 0);
  await waitStatus(r, a, 'running');
  const { pid } = await getState(r, a);
  const bb = await makeBundle(t, {
    args: ['/probe', 'ns'],
    mutate: c => {
      c.linux.namespaces = c.linux.namespaces.map(n => (n.type === 'network' || n.type === 'ipc') ? { type: n.type, path: `/proc/${pid}/ns/${n.type === 'network' ? 'net' : 'ipc'}` } : n);
    },
  });
  const res = await r(['run', '--bundle', bb.dir, bId]);
  t.is(res.code, 0, describe(res));
  const inside = Object.fromEntries(res.stdout.trim().split('\n').map(l => l.split(' ')));
  t.is(inside.net, readlinkNs(pid, 'net'));
  t.is(inside.ipc, readlinkNs(pid, 'ipc'));
  t.not(inside.pid, readlinkNs(pid, 'pid'));
  t.not(inside.mnt, readlinkNs(pid, 'mnt'));
  t.is((await r(['delete', '--force', a])).code, 0);
  assertClean(t, { root, id: a, bundle: ba.dir });
  assertClean(t, { root, id: bId, bundle: bb.dir });
});

test('domainname and sysctl are applied inside', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, {
    args: ['/bin/sh', '-c', 'cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward'],
    mutate: c => { c.domainname = 'example.test'; c.linux.sysctl = { 'net.ipv4.ip_forward': '1' }; },
  });
  const hostBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  const res = await r(['run', '--bundle', b.dir, id]);
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, 'example.test\n1\n');
  t.is(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostBefore, 'the host ip_forward changed');
  assertClean(t, { root, id, bundle: b.dir });
});

test('createRuntime, createContainer and startContainer hooks run in the right namespaces', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const out = tempDir(t);
  const hook = join(out, 'hook.sh');
  writeFileSync(hook, '#!/bin/sh\n{ cat; echo; readlink /proc/self/ns/mnt; } > "$1"\n');
  chmodSync(hook, 0o755);
  const b = await makeBundle(t, {
    args: ['/bin/true'],
    mutate: (c, { rootfs }) => {
      writeFileSync(join(rootfs, 'hook.sh'), '#!/bin/sh\n{ cat; echo; readlink /proc/self/ns/mnt; } > /tmp/start-hook\n');
      chmodSync(join(rootfs, 'hook.sh'), 0o755);
      c.root.readonly = false;
      c.hooks = {
        createRuntime: [{ path: hook, args: ['hook.sh', join(out, 'cr')] }],
        createContainer: [{ path: hook, args: ['hook.sh', join(out, 'cc')] }],
        startContainer: [{ path: '/hook.sh', args: ['hook.sh'] }],
      };
    },
  });
  const res = await r(['run', '--bundle', b.dir, id]);
  t.is(res.code, 0, describe(res));
  const [crState, crNs] = readFileSync(join(out, 'cr'), 'utf8').trim().split('\n');
  const [ccState, ccNs] = readFileSync(join(out, 'cc'), 'utf8').trim().split('\n');
  const [scState, scNs] = readFileSync(join(b.rootfs, 'tmp', 'start-hook'), 'utf8').trim().split('\n');
  t.is(JSON.parse(crState).id, id);
  t.true(JSON.parse(ccState).pid > 0);
  t.is(JSON.parse(scState).id, id);
  t.is(crNs, readlinkNs('self', 'mnt'), 'createRuntime runs in the runtime namespace');
  t.not(ccNs, readlinkNs('self', 'mnt'), 'createContainer runs in the container mount namespace');
  t.is(ccNs, scNs);
  assertClean(t, { root, id, bundle: b.dir });
});

test('a failing createContainer hook fails create with its step, nothing left', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, c => { c.hooks = { createContainer: [{ path: '/bin/false' }] }; });
  const res = await r(['create', '--bundle', b.dir, id]);
  t.not(res.code, 0);
  t.regex(res.stderr, /step \d+\/\d+: run createContainer hook \/bin\/false: hook exited with a non-zero status/);
  assertClean(t, { root, id, bundle: b.dir });
});
