// Isolation seen from inside a container: pid/uts/mount/user namespaces, exec joining them,
// readonly root, masked and readonly paths.
import test from 'ava';
import { hostname as hostHostname } from 'node:os';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  rt, newRoot, makeBundle, uniqueId, assertClean, getState, waitStatus, describe, readlinkNs, IS_TSRUN,
} from './helpers/index.mjs';

/** `run` a fresh container with the given args / config edits; returns the run result. */
async function runOnce(t, opts) {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t, opts);
  const res = await r(['run', '--bundle', b.dir, id], { timeout: 30_000 });
  assertClean(t, { root, id, bundle: b.dir });
  return { res, b };
}

test('the process is PID 1 and sees no host processes', async t => {
  const { res } = await runOnce(t, { args: ['/bin/sh', '-c', 'echo pid=$$; ls -d /proc/[0-9]*'] });
  t.is(res.code, 0, describe(res));
  const [first, ...procs] = res.stdout.trim().split('\n');
  t.is(first, 'pid=1');
  const pids = procs.map(p => Number(p.replace('/proc/', '')));
  t.true(pids.includes(1));
  t.true(pids.length <= 3, `too many processes visible: ${pids}`);
  t.true(pids.every(p => p < 10), `host pids visible: ${pids}`);
});

test('hostname comes from config.json and the host hostname is unchanged', async t => {
  const before = hostHostname();
  const name = `ctr-${uniqueId().slice(2)}`;
  const { res } = await runOnce(t, { args: ['/bin/hostname'], mutate: c => { c.hostname = name; } });
  t.is(res.code, 0, describe(res));
  t.is(res.stdout.trim(), name);
  t.is(hostHostname(), before);
  t.is(execFileSync('hostname', { encoding: 'utf8' }).trim(), before);
});

test('a file written to a tmpfs mount inside does not appear on the host', async t => {
  const { res, b } = await runOnce(t, {
    args: ['/bin/sh', '-c', '/probe write /data/secret hello && cat /data/secret && grep " /data " /proc/self/mounts'],
    mutate: c => { c.mounts.push({ destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m'] }); },
  });
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /^ok\nhello\n?tmpfs \/data tmpfs /);
  const hostSide = join(b.rootfs, 'data');
  t.deepEqual(existsSync(hostSide) ? readdirSync(hostSide) : [], []);
});

test('root.readonly makes / read-only (EROFS); writable otherwise', async t => {
  const ro = await runOnce(t, { args: ['/probe', 'write', '/written'], readonly: true });
  t.is(ro.res.stdout, 'EROFS\n', describe(ro.res));
  t.false(existsSync(join(ro.b.rootfs, 'written')));
  const rw = await runOnce(t, { args: ['/probe', 'write', '/written', 'from-inside'], readonly: false });
  t.is(rw.res.stdout, 'ok\n', describe(rw.res));
  t.true(existsSync(join(rw.b.rootfs, 'written')));
});

test('maskedPaths read empty; readonlyPaths are read-only', async t => {
  // A default masked /proc file that exists here and has content on the host
  // (/proc/kcore is absent on some kernels).
  const procFile = ['/proc/kcore', '/proc/timer_list', '/proc/keys', '/proc/sched_debug']
    .find(p => { try { return readFileSync(p).length > 0 || statSync(p).size > 0; } catch { return false; } });
  if (!procFile) { t.log('no masked /proc file with content on this host'); }
  const { res } = await runOnce(t, {
    args: ['/bin/sh', '-c', [
      `echo proc=$(wc -c < ${procFile ?? '/proc/kcore'})`,
      'echo secret=$(cat /etc/secret)',
      'echo firmware=$(ls /sys/firmware | wc -l)',
      'echo sysctl=$(/probe write /proc/sys/kernel/hostname x)',
    ].join('; ')],
    mutate: (c, { rootfs }) => {
      writeFileSync(join(rootfs, 'etc', 'secret'), 'top secret\n');
      c.linux.maskedPaths.push('/etc/secret');
    },
  });
  t.is(res.code, 0, describe(res));
  t.is(res.stdout, `proc=${procFile ? 0 : ''}\nsecret=\nfirmware=0\nsysctl=EROFS\n`);
});

test('user namespace: uidMappings 0→100000 are visible in /proc/self/uid_map', async t => {
  const { res } = await runOnce(t, {
    args: ['/bin/sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; /probe id'],
    mutate: (c, { rootfs }) => {
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      execFileSync('chown', ['-R', '-h', '100000:100000', rootfs]);
    },
  });
  t.is(res.code, 0, describe(res));
  const lines = res.stdout.trim().split('\n').map(l => l.trim().split(/\s+/).join(' '));
  t.is(lines[0], '0 100000 65536', 'uid_map');
  t.is(lines[1], '0 100000 65536', 'gid_map');
  t.regex(lines[2] ?? '', /^uid=0 gid=0 /);
});

test('a new network namespace has only lo, and lo is up (as crun; runc leaves it down)', async t => {
  const { res } = await runOnce(t, {
    // The listener's stdin is a fifo held open until the client is done: with /dev/null it
    // half-closes at once, and a client that sees that EOF before reading its own stdin
    // exits without sending (busybox nc). The listener is waited for, not killed, so its
    // output is not lost; it is killed only if no client ever connected.
    args: ['/bin/sh', '-c', [
      'ls /sys/class/net; cat /sys/class/net/lo/flags',
      'mkfifo /dev/shm/lo.in; nc -l -p 5555 </dev/shm/lo.in & L=$!; exec 3>/dev/shm/lo.in',
      'ok=; for i in $(seq 1 50); do echo tcp-over-lo | nc -w 1 127.0.0.1 5555 2>/dev/null && { ok=1; break; }; sleep 0.1; done',
      'exec 3>&-; [ -n "$ok" ] || kill $L 2>/dev/null; wait $L',
    ].join('; ')],
    mutate: c => { if (!c.linux.namespaces.some(n => n.type === 'network')) c.linux.namespaces.push({ type: 'network' }); },
  });
  t.is(res.code, IS_TSRUN ? 0 : res.code, describe(res));
  const [ifs, flags, ping] = res.stdout.trim().split('\n');
  t.is(ifs, 'lo');
  if (!IS_TSRUN) return; // runc: lo stays down
  t.is(Number(flags) & 1, 1, `IFF_UP in ${flags}`);
  t.is(ping, 'tcp-over-lo');
});

test('exec joins every namespace of the running container', async t => {
  const root = newRoot(t);
  const r = rt(root);
  const id = uniqueId();
  const b = await makeBundle(t);
  t.is((await r(['run', '-d', '--bundle', b.dir, id])).code, 0);
  await waitStatus(r, id, 'running');
  const { pid } = await getState(r, id);
  const e = await r(['exec', id, '/probe', 'ns']);
  t.is(e.code, 0, describe(e));
  const inside = Object.fromEntries(e.stdout.trim().split('\n').map(l => l.split(' ')));
  for (const ns of ['pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup']) {
    t.is(inside[ns], readlinkNs(pid, ns), `exec is not in the container's ${ns} namespace`);
  }
  t.not(inside.mnt, readlinkNs('self', 'mnt'));
  const ps = await r(['exec', id, '/bin/sh', '-c', 'echo $$; cat /proc/1/cmdline | tr "\\0" " "']);
  t.is(ps.code, 0, describe(ps));
  const [execPid, initCmd] = ps.stdout.trim().split('\n');
  t.not(Number(execPid), 1);
  t.is(initCmd.trim(), '/probe pause');
  t.is((await r(['delete', '--force', id])).code, 0);
  assertClean(t, { root, id, bundle: b.dir });
});
