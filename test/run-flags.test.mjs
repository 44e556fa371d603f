// docker run's flags on top of the engine: -v / --mount / --tmpfs / --read-only, named and
// anonymous volumes (and `tsrun volume`), resource limits, capabilities, the default seccomp
// profile and --security-opt, --privileged, --env-file, and docker's exit 125 for bad values.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { rt, newRoot, tempDir, ensureImage, describe, tsrunOnly, mountsUnder, waitFor, uniqueId, assertCliError, childEnv, withEngineImage } from './helpers/index.mjs';

const t2 = tsrunOnly(test);

const setup = withEngineImage;

/** `run --rm IMAGE ARGS...` with flags before the image; asserts exit 0 and returns stdout. */
async function out(t, r, flags, args) {
  const res = await r(['run', '--rm', ...flags, 'test/bb:1', ...args]);
  t.is(res.code, 0, describe(res));
  return res.stdout;
}

const volumesOf = root => { try { return readdirSync(join(root, 'volumes')).filter(n => !n.startsWith('.')); } catch { return []; } };
const inspect = async (r, name) => JSON.parse((await r(['inspect', name])).stdout)[0];

t2('-v and --mount bind: read-only (EROFS) and read-write (visible on the host); a missing host dir is created', async t => {
  const { root, r } = await setup(t);
  const host = tempDir(t);
  writeFileSync(join(host, 'in.txt'), 'from host\n');
  t.is(await out(t, r, ['-v', `${host}:/data:ro`], ['/probe', 'write', '/data/x']), 'EROFS\n');
  t.is(await out(t, r, ['-v', `${host}:/data:ro`], ['cat', '/data/in.txt']), 'from host\n');
  t.is(await out(t, r, ['--mount', `type=bind,source=${host},target=/m,readonly`], ['/probe', 'write', '/m/x']), 'EROFS\n');
  t.is(await out(t, r, ['-v', `${host}:/data`], ['/probe', 'write', '/data/x', 'hello']), 'ok\n');
  t.is(readFileSync(join(host, 'x'), 'utf8'), 'hello');
  t.is(await out(t, r, ['--mount', `type=bind,src=${host},dst=/m`], ['/probe', 'write', '/m/y', 'again']), 'ok\n');
  t.is(readFileSync(join(host, 'y'), 'utf8'), 'again');
  // -v creates a missing source directory, --mount refuses it (as docker)
  const fresh = join(host, 'new', 'dir');
  t.is(await out(t, r, ['-v', `${fresh}:/fresh`], ['/probe', 'write', '/fresh/f']), 'ok\n');
  t.true(existsSync(join(fresh, 'f')));
  const missing = await r(['run', '--rm', '--mount', `type=bind,source=${host}/nope,target=/n`, 'test/bb:1', 'true']);
  t.is(missing.code, 125, describe(missing));
  assertCliError(t, missing, { match: /bind source path does not exist: .*\/nope/ });
  t.deepEqual(mountsUnder(root), []);
  t.deepEqual(readdirSync(join(root, 'containers')), []);
});

t2('named volume: created on first use with the image content, persists across containers; volume ls/inspect/rm', async t => {
  const { root, r } = await setup(t);
  t.is(await out(t, r, ['-v', 'data:/data'], ['sh', '-c', 'echo kept > /data/f']), '');
  t.is(await out(t, r, ['-v', 'data:/data:ro'], ['cat', '/data/f']), 'kept\n');
  t.is(await out(t, r, ['--mount', 'source=data,target=/d2'], ['cat', '/d2/f']), 'kept\n');
  t.is(readFileSync(join(root, 'volumes', 'data', '_data', 'f'), 'utf8'), 'kept\n');
  // a new volume over a non-empty image dir starts as a copy of it
  t.regex(await out(t, r, ['-v', 'etc:/etc'], ['cat', '/etc/passwd']), /^root:/);
  t.true(existsSync(join(root, 'volumes', 'etc', '_data', 'passwd')));

  const ls = await r(['volume', 'ls']);
  t.is(ls.code, 0, describe(ls));
  t.is(ls.stdout, 'DRIVER    VOLUME NAME\nlocal     data\nlocal     etc\n');
  t.is((await r(['volume', 'ls', '-q'])).stdout, 'data\netc\n');
  const info = JSON.parse((await r(['volume', 'inspect', 'data'])).stdout);
  t.is(info.length, 1);
  t.like(info[0], { Name: 'data', Driver: 'local', Scope: 'local', Mountpoint: join(root, 'volumes', 'data', '_data'), Labels: {} });
  t.regex(info[0].CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
  t.is((await r(['volume', 'inspect', '--format', '{{.Mountpoint}}', 'data'])).stdout, join(root, 'volumes', 'data', '_data') + '\n');

  // volume create (idempotent), labels, rm refuses a volume a container uses
  t.is((await r(['volume', 'create', '--label', 'team=a', 'made'])).stdout, 'made\n');
  t.is((await r(['volume', 'create', 'made'])).code, 0);
  t.deepEqual(JSON.parse((await r(['volume', 'inspect', 'made'])).stdout)[0].Labels, { team: 'a' });
  t.is((await r(['volume', 'ls', '-q', '--filter', 'label=team=a'])).stdout, 'made\n');
  const anon = await r(['volume', 'create']);
  t.regex(anon.stdout, /^[0-9a-f]{64}\n$/);
  const bad = await r(['volume', 'create', 'a/b']);
  t.is(bad.code, 1);
  assertCliError(t, bad, { match: /"a\/b" includes invalid characters for a local volume name/ });

  const name = uniqueId('holder');
  t.is((await r(['create', '--name', name, '-v', 'data:/data', 'test/bb:1', 'true'])).code, 0);
  t.is((await r(['volume', 'ls', '-q', '--filter', 'dangling=true'])).stdout.split('\n').includes('data'), false);
  const busy = await r(['volume', 'rm', 'data']);
  t.is(busy.code, 1, describe(busy));
  t.regex(busy.stderr, /remove data: volume is in use - \[[0-9a-f]{64}\]/);
  // -f does not override it (docker's -f only ignores unknown names); the other names are removed
  t.is((await r(['volume', 'create', 'spare'])).code, 0);
  const forced = await r(['volume', 'rm', '-f', 'data', 'spare', 'nope']);
  t.is(forced.code, 1, describe(forced));
  t.is(forced.stdout, 'spare\n');
  t.regex(forced.stderr, /^Error response from daemon: remove data: volume is in use - \[[0-9a-f]{64}\]\n$/);
  t.true(existsSync(join(root, 'volumes', 'data')), 'rm -f removed a volume in use');
  t.is((await r(['rm', name])).code, 0);
  t.is((await r(['volume', 'rm', 'data', 'etc'])).stdout, 'data\netc\n');
  const gone = await r(['volume', 'inspect', 'data']);
  t.is(gone.code, 1);
  t.regex(gone.stderr, /No such volume: data/);
  t.regex((await r(['volume', 'rm', 'data'])).stderr, /no such volume/);
  t.is((await r(['volume', 'rm', '-f', 'data'])).code, 0, 'rm -f of an unknown volume is not an error');
  t.is((await r(['volume', 'prune', '-f', '-a'])).code, 0);
  t.deepEqual(volumesOf(root), []);
});

t2('anonymous volumes: -v /dst gets a 64-hex volume; --rm and rm -v remove it, plain rm leaves it for volume prune', async t => {
  const { root, r } = await setup(t);
  t.is(await out(t, r, ['-v', '/anon'], ['sh', '-c', 'echo x > /anon/f; cat /anon/f']), 'x\n');
  t.deepEqual(volumesOf(root), [], '--rm removed the anonymous volume');
  // a detached --rm container: removed by its supervisor, with its volume
  const d = await r(['run', '-d', '--rm', '-v', '/anon', 'test/bb:1', 'true']);
  t.is(d.code, 0, describe(d));
  await waitFor(() => readdirSync(join(root, 'containers')).length === 0, { what: 'the --rm container to go' });
  t.deepEqual(volumesOf(root), [], 'run -d --rm removed the anonymous volume');

  const keep = uniqueId('keep');
  t.is((await r(['run', '--name', keep, '-v', '/anon', '--mount', 'type=volume,target=/anon2', 'test/bb:1', 'true'])).code, 0);
  const vols = volumesOf(root);
  t.is(vols.length, 2);
  vols.forEach(v => t.regex(v, /^[0-9a-f]{64}$/));
  t.deepEqual(JSON.parse((await r(['volume', 'inspect', vols[0]])).stdout)[0].Labels, { 'com.docker.volume.anonymous': '' });
  t.is((await r(['rm', keep])).code, 0);
  t.is(volumesOf(root).length, 2, 'rm without -v keeps anonymous volumes');
  t.is((await r(['volume', 'create', 'named'])).code, 0);
  const pr = await r(['volume', 'prune', '-f']);
  t.is(pr.code, 0, describe(pr));
  t.regex(pr.stdout, /^Deleted Volumes:\n[0-9a-f]{64}\n[0-9a-f]{64}\n\nTotal reclaimed space: /);
  t.deepEqual(volumesOf(root), ['named'], 'prune without -a keeps named volumes');

  const withV = uniqueId('withv');
  t.is((await r(['run', '--name', withV, '-v', '/anon', '-v', 'named:/named', 'test/bb:1', 'true'])).code, 0);
  t.is(volumesOf(root).length, 2);
  t.is((await r(['rm', '-v', withV])).code, 0);
  t.deepEqual(volumesOf(root), ['named'], 'rm -v removes anonymous volumes only');
});

t2('--tmpfs and --mount type=tmpfs (docker\'s default options); --read-only', async t => {
  const { root, r } = await setup(t);
  const m = await out(t, r, ['--tmpfs', '/t:size=1m', '--mount', 'type=tmpfs,target=/t2,tmpfs-size=2m,tmpfs-mode=700'], ['sh', '-c', 'grep -E " /t2? " /proc/mounts; /probe write /t/f']);
  t.regex(m, /^tmpfs \/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k 0 0$/m);
  t.regex(m, /^tmpfs \/t2 tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k,mode=700 0 0$/m);
  t.regex(m, /^ok$/m);
  t.is(await out(t, r, ['--tmpfs', '/run:exec'], ['sh', '-c', 'grep " /run " /proc/mounts']), 'tmpfs /run tmpfs rw,nosuid,nodev,relatime 0 0\n');
  // --read-only: the root is read-only, mounts on it are not
  t.is(await out(t, r, ['--read-only'], ['/probe', 'write', '/x']), 'EROFS\n');
  t.is(await out(t, r, ['--read-only', '--tmpfs', '/tmp'], ['/probe', 'write', '/tmp/x']), 'ok\n');
  t.deepEqual(mountsUnder(root), []);
});

t2('--memory 32m: a memory hog is OOM-killed (137; inspect says OOMKilled for a detached one)', async t => {
  const { r } = await setup(t);
  const fg = await r(['run', '--rm', '--memory', '32m', 'test/bb:1', '/probe', 'memhog', '200']);
  t.is(fg.code, 137, describe(fg));
  const ok = await r(['run', '--rm', '-m', '64m', '--memory-swap', '-1', '--memory-reservation', '32m', 'test/bb:1', '/probe', 'memhog', '8']);
  t.is(ok.code, 0, describe(ok));
  t.is(ok.stdout, 'done\n');
  const name = uniqueId('hog');
  t.is((await r(['run', '-d', '--name', name, '--memory', '32m', 'test/bb:1', '/probe', 'memhog', '200'])).code, 0);
  const w = await r(['wait', name], { timeout: 60_000 });
  t.is(w.stdout, '137\n', describe(w));
  const st = (await inspect(r, name)).State;
  t.is(st.ExitCode, 137);
  t.true(st.OOMKilled);
});

t2('--pids-limit 10: fork fails with EAGAIN; --cpus, --cpu-shares and --cpuset-cpus are accepted', async t => {
  const { r } = await setup(t);
  const res = await out(t, r, ['--pids-limit', '10'], ['/probe', 'forkbomb', '50']);
  const m = /^forked (\d+) (\w+)\n$/.exec(res);
  t.truthy(m, res);
  t.true(Number(m[1]) < 10, res);
  t.is(m[2], 'EAGAIN');
  t.is(await out(t, r, ['--cpus', '0.5', '-c', '512', '--cpuset-cpus', '0'], ['echo', 'ok']), 'ok\n');
});

t2('capabilities: --cap-drop ALL, --cap-add (with or without CAP_), --privileged', async t => {
  const { r } = await setup(t);
  const capEff = s => /CapEff:\s*([0-9a-f]+)/.exec(s)?.[1];
  const capBnd = s => /CapBnd:\s*([0-9a-f]+)/.exec(s)?.[1];
  t.is(capEff(await out(t, r, [], ['/probe', 'caps'])), '00000000a80425fb', 'docker\'s default set');
  t.is(capEff(await out(t, r, ['--cap-drop', 'ALL'], ['/probe', 'caps'])), '0000000000000000');
  const chown = await r(['run', '--rm', '--cap-drop', 'ALL', 'test/bb:1', 'chown', '1', '/etc/passwd']);
  t.not(chown.code, 0, describe(chown));
  t.regex(chown.stderr, /Operation not permitted/);
  t.is(capEff(await out(t, r, ['--cap-drop', 'ALL', '--cap-add', 'chown', '--cap-add', 'CAP_KILL'], ['/probe', 'caps'])), '0000000000000021');
  t.is(capEff(await out(t, r, ['--cap-drop', 'chown'], ['/probe', 'caps'])), '00000000a80425fa');
  // CAP_SYS_ADMIN: mount works, because the default seccomp profile then allows mount(2) too
  t.is(await out(t, r, [], ['/probe', 'mount-tmpfs', '/mnt']), 'EPERM\n');
  t.is(await out(t, r, ['--cap-add', 'SYS_ADMIN'], ['/probe', 'mount-tmpfs', '/mnt']), 'ok\n');
  const all = capBnd(await out(t, r, ['--cap-add', 'ALL'], ['/probe', 'caps']));
  const priv = await out(t, r, ['--privileged'], ['sh', '-c', '/probe caps; /probe seccomp; grep -E " /sys (sysfs|sys) " /proc/mounts; ls /dev']);
  t.is(capEff(priv), all, 'privileged: every capability');
  t.regex(priv, /^0$/m, 'privileged: no seccomp');
  t.regex(priv, /^sysfs \/sys sysfs rw,/m, 'privileged: /sys read-write');
  t.regex(priv, /^null$/m);
  if (existsSync('/dev/loop-control')) t.regex(priv, /^loop-control$/m, 'privileged: the host\'s devices');
});

t2('default seccomp profile: namespaces and swapoff refused; --security-opt seccomp=unconfined|FILE, no-new-privileges', async t => {
  const { r } = await setup(t);
  t.is(await out(t, r, [], ['/probe', 'seccomp']), '2\n');
  // unshare(CLONE_NEWUSER) needs no capability: only the profile stops it
  const us = await r(['run', '--rm', 'test/bb:1', 'unshare', '-U', 'true']);
  t.not(us.code, 0, describe(us));
  t.regex(us.stderr, /Operation not permitted/);
  t.is((await r(['run', '--rm', '--security-opt', 'seccomp=unconfined', 'test/bb:1', 'unshare', '-U', 'true'])).code, 0);
  t.is(await out(t, r, ['--security-opt', 'seccomp=unconfined'], ['/probe', 'seccomp']), '0\n');
  // with CAP_SYS_ADMIN, swapoff is still refused by the profile (EPERM), allowed without it (ENOENT)
  t.is(await out(t, r, ['--cap-add', 'SYS_ADMIN'], ['/probe', 'syscall-errno', 'swapoff']), 'EPERM\n');
  t.is(await out(t, r, ['--cap-add', 'SYS_ADMIN', '--security-opt', 'seccomp:unconfined'], ['/probe', 'syscall-errno', 'swapoff']), 'ENOENT\n');
  t.is(await out(t, r, [], ['/probe', 'syscall-errno', 'personality']), 'ok\n', 'personality(0xffffffff) is allowed');
  // a profile file, in Docker's format
  const dir = tempDir(t);
  const prof = join(dir, 'profile.json');
  writeFileSync(prof, JSON.stringify({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }, { name: 'getpid', action: 'SCMP_ACT_ERRNO', includes: { caps: ['CAP_SYS_ADMIN'] } }],
  }));
  t.is(await out(t, r, ['--security-opt', `seccomp=${prof}`], ['/probe', 'syscall-errno', 'mkdir']), 'EACCES\n');
  t.is(await out(t, r, ['--security-opt', `seccomp=${prof}`], ['/probe', 'syscall-errno', 'getpid']), 'ok\n');
  t.is(await out(t, r, ['--security-opt', `seccomp=${prof}`, '--cap-add', 'SYS_ADMIN'], ['/probe', 'syscall-errno', 'getpid']), 'EPERM\n');
  t.is(await out(t, r, ['--security-opt', 'no-new-privileges'], ['/probe', 'nnp']), '1\n');
  t.is(await out(t, r, ['--security-opt', 'no-new-privileges:false'], ['/probe', 'nnp']), '0\n');
  t.is(await out(t, r, ['--security-opt', 'no-new-privileges=true'], ['/probe', 'nnp']), '1\n');
  t.is(await out(t, r, ['--security-opt', 'systempaths=unconfined'], ['sh', '-c', 'grep -c " /proc/sys proc ro," /proc/mounts || true']), '0\n');
});

t2('--env-file and -e: files first, -e wins; a bare KEY comes from tsrun\'s environment', async t => {
  const { r } = await setup(t);
  const dir = tempDir(t);
  const f = join(dir, 'env');
  writeFileSync(f, '# comment\n\nA=1\n  B=two words \nC=from-file\nFROM_HOST\nNOT_SET_ANYWHERE\nEMPTY=\n');
  const res = await r(['run', '--rm', '--env-file', f, '-e', 'C=from-flag', '-e', 'FROM_HOST2', '--env', 'FROM_HOST3', '--env=EMPTY_HOST', '-e', 'UNSET_BARE', 'test/bb:1', 'env'],
    { env: childEnv({ FROM_HOST: 'h1', FROM_HOST2: 'h2', FROM_HOST3: 'h3', EMPTY_HOST: '' }) });
  t.is(res.code, 0, describe(res));
  const env = res.stdout.split('\n');
  for (const e of ['A=1', 'B=two words ', 'C=from-flag', 'FROM_HOST=h1', 'FROM_HOST2=h2', 'FROM_HOST3=h3', 'EMPTY_HOST=', 'EMPTY=']) t.true(env.includes(e), `${e} in\n${res.stdout}`);
  t.false(res.stdout.includes('NOT_SET_ANYWHERE'));
  t.false(res.stdout.includes('UNSET_BARE'), '-e KEY with KEY unset here: not set in the container');
  t.false(env.includes('C=from-file'));
  const bad = join(dir, 'bad');
  writeFileSync(bad, 'GOOD=1\nBAD KEY=x\n');
  const b = await r(['run', '--rm', '--env-file', bad, 'test/bb:1', 'true']);
  t.is(b.code, 125);
  assertCliError(t, b, { match: /variable 'BAD KEY' contains whitespaces/ });
});

t2('bad values: exit 125 with one line, nothing left behind', async t => {
  const { root, r } = await setup(t);
  const cases = [
    [['-v', '/a:/b:/c:/d'], /invalid volume specification: '\/a:\/b:\/c:\/d'/],
    [['-v', '/a:rw'], /invalid volume specification: '\/a:rw'/],
    [['-v', '/host:relative'], /invalid mount path: 'relative' mount path must be absolute/],
    [['-v', '/host:/x:rx'], /invalid mode: rx/],
    [['-v', './rel:/x'], /"\.\/rel" includes invalid characters for a local volume name/],
    [['-v', '/a:/x', '-v', '/b:/x'], /Duplicate mount point: \/x/],
    [['--mount', 'type=bind,target=/x'], /field Source must not be empty/],
    [['--mount', 'type=nfs,target=/x'], /mount type unknown/],
    [['--mount', 'type=tmpfs,source=x,target=/x'], /field Source must be empty/],
    [['--mount', 'target'], /invalid field 'target' must be a key=value pair/],
    [['--mount', 'type=volume,target=/x,bogus=1'], /unexpected key 'bogus'/],
    [['--tmpfs', 'rel'], /mount path must be absolute/],
    [['--memory', 'lots'], /invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots'/],
    [['--memory', '1k'], /Minimum memory limit allowed is 6MB/],
    [['--memory', '64m', '--memory-swap', '32m'], /Minimum memoryswap limit should be larger than memory limit/],
    [['--memory-swap', '64m'], /You should always set the Memory limit when using Memoryswap limit/],
    [['--cpus', 'x'], /failed to parse x as a rational number/],
    [['--cpus', '1000'], /Range of CPUs is from 0.01 to \d+\.00/],
    [['--cpu-shares', 'x'], /invalid argument "x" for "-c, --cpu-shares" flag/],
    [['--cpuset-cpus', '999'], /Requested CPUs are not available - requested 999/],
    [['--pids-limit', 'ten'], /invalid argument "ten" for "--pids-limit" flag/],
    [['--cap-add', 'NOPE'], /invalid CapAdd: unknown capability: "CAP_NOPE"/],
    [['--security-opt', 'bogus=1'], /invalid --security-opt 2: "bogus=1"/],
    [['--security-opt', 'seccomp'], /Invalid --security-opt: "seccomp"/],
    [['--security-opt', 'seccomp=/no/such/profile.json'], /opening seccomp profile \(\/no\/such\/profile.json\) failed/],
    [['--env-file', '/no/such/env'], /open \/no\/such\/env: no such file or directory/],
    [['--stop-signal', 'NOPE'], /Invalid signal: NOPE/],
    [['--stop-timeout', 'soon'], /invalid argument "soon" for "--stop-timeout" flag/],
    [['--ulimit', 'nofiles=1'], /invalid argument "nofiles=1" for "--ulimit" flag: invalid ulimit type: nofiles/],
    [['--ulimit', 'nofile=10:5'], /ulimit soft limit must be less than or equal to hard limit: 10 > 5/],
    [['--sysctl', 'kernel.hostname=x'], /sysctl 'kernel.hostname' is not allowed/],
    [['--sysctl', 'kernel.shmmax=1', '--ipc', 'host'], /sysctl 'kernel.shmmax' not allowed with IpcMode host/],
    [['--hostname', 'h', '--uts', 'host'], /Conflicting options: hostname and the UTS mode/],
    [['--oom-score-adj', '2000'], /Invalid value 2000, range for oom score adj is \[-1000, 1000\]/],
    [['--device', '/dev/no-such-device'], /error gathering device information while adding custom device "\/dev\/no-such-device": no such file or directory/],
    [['--device', '/etc/passwd'], /not a device node/],
    [['--pid', 'other'], /invalid PID mode: other/],
    [['--shm-size', 'big'], /invalid argument "big" for "--shm-size" flag/],
  ];
  for (const [flags, match] of cases) {
    const res = await r(['run', '--rm', ...flags, 'test/bb:1', 'true']);
    t.is(res.code, 125, `${flags.join(' ')}: ${describe(res)}`);
    assertCliError(t, res, { match });
  }
  t.deepEqual(readdirSync(join(root, 'containers')), []);
  t.deepEqual(volumesOf(root), []);
  t.deepEqual(mountsUnder(root), []);
});

t2('labels, --stop-signal, --stop-timeout and the volumes are kept in the container record', async t => {
  const { root, r } = await setup(t);
  const name = uniqueId('rec');
  const c = await r(['create', '--name', name, '-l', 'a=1', '--label', 'b', '--stop-signal', 'SIGUSR1', '--stop-timeout', '3', '-v', '/anon', 'test/bb:1', 'true']);
  t.is(c.code, 0, describe(c));
  const rec = JSON.parse(readFileSync(join(root, 'containers', c.stdout.trim(), 'container.json'), 'utf8'));
  t.deepEqual(rec.labels, { a: '1', b: '' });
  t.is(rec.stopSignal, 'SIGUSR1');
  t.is(rec.stopTimeout, 3);
  t.is(rec.volumes.length, 1);
  t.like(rec.volumes[0], { anonymous: true, destination: '/anon' });
  t.is((await r(['rm', '-v', name])).code, 0);
  t.deepEqual(volumesOf(root), []);
});

t2('-i: stdin is passed to the container only with -i (docker gives it /dev/null otherwise)', async t => {
  const { r } = await setup(t);
  t.is((await r(['run', '--rm', '-i', 'test/bb:1', 'cat'], { input: 'typed\n' })).stdout, 'typed\n');
  t.is((await r(['run', '--rm', 'test/bb:1', 'cat'], { input: 'typed\n' })).stdout, '');
});

t2('--init: tini (bound read-only at /sbin/docker-init) is PID 1, reaps orphans, passes SIGTERM and the exit code on', async t => {
  const { r } = await setup(t);
  t.is(await out(t, r, ['--init'], ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline']), '/sbin/docker-init -- sh -c tr "\\0" " " < /proc/1/cmdline ');
  t.is(await out(t, r, ['--init'], ['/probe', 'write', '/sbin/docker-init']), 'EROFS\n');
  // an orphan (its parent exited) is reaped by PID 1
  t.is(await out(t, r, ['--init'], ['sh', '-c', 'sh -c "sleep 0.2 & exit 0"; sleep 3; ps -o stat | grep -c ^Z; true']), '0\n');
  t.is((await r(['run', '--rm', '--init', 'test/bb:1', 'sh', '-c', 'exit 7'])).code, 7);
  // sleep as PID 1 would ignore SIGTERM (no handler); under tini it dies of it at once
  const name = uniqueId('init');
  t.is((await r(['run', '-d', '--init', '--name', name, 'test/bb:1', 'sleep', '1000'])).code, 0);
  const t0 = Date.now();
  t.is((await r(['stop', '-t', '20', name])).code, 0);
  t.true(Date.now() - t0 < 15_000, `stop took ${Date.now() - t0} ms: SIGTERM did not reach sleep`);
  t.is((await inspect(r, name)).State.ExitCode, 143);
  t.is((await r(['rm', name])).code, 0);
  const missing = await r(['run', '--rm', '--init', 'test/bb:1', 'true'], { env: { ...childEnv(), TSRUN_INIT_BINARY: '/nonexistent/tini' } });
  t.is(missing.code, 125);
  assertCliError(t, missing, { match: /--init: no static init binary .*apt-get install tini/ });
});

t2('inspect shows what run was given: Mounts (volume, bind, tmpfs), HostConfig limits, Config labels/stdin/stop signal, Init', async t => {
  const { r } = await setup(t);
  const host = tempDir(t);
  const name = uniqueId('insp');
  const d = await r(['run', '-d', '-i', '--name', name, '-v', `${name}-vol:/data`, '-v', `${host}:/h:ro`, '--tmpfs', '/scratch',
    '-m', '64m', '--cpus', '0.5', '--cpu-shares', '512', '--pids-limit', '50', '--read-only', '--init', '--label', 'k=v', '--stop-signal', 'SIGUSR1',
    'test/bb:1', 'sleep', '1000']);
  t.is(d.code, 0, describe(d));
  t.teardown(async () => { await r(['rm', '-f', '-v', name]); await r(['volume', 'rm', `${name}-vol`]); });
  const c = await inspect(r, name);
  const byDest = Object.fromEntries(c.Mounts.map(m => [m.Destination, m]));
  t.deepEqual(Object.keys(byDest).sort(), ['/data', '/h', '/scratch']);
  t.like(byDest['/data'], { Type: 'volume', Name: `${name}-vol`, Driver: 'local', RW: true });
  t.regex(byDest['/data'].Source, new RegExp(`/volumes/${name}-vol/_data$`));
  t.like(byDest['/h'], { Type: 'bind', Source: host, RW: false });
  t.like(byDest['/scratch'], { Type: 'tmpfs', RW: true });
  t.like(c.HostConfig, { Memory: 64 << 20, NanoCpus: 5e8, CpuShares: 512, PidsLimit: 50, ReadonlyRootfs: true, Init: true });
  t.deepEqual(c.HostConfig.Binds.sort(), [`${host}:/h:ro`, `${name}-vol:/data`].sort());
  t.like(c.Config, { OpenStdin: true, StopSignal: 'SIGUSR1', Cmd: ['sleep', '1000'] });
  t.is(c.Config.Labels.k, 'v');
  const tpl = await r(['inspect', '-f', '{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}|{{index .Config.Labels "k"}}', name]);
  t.is(tpl.stdout.trim().split('|')[1], 'v');
  t.regex(tpl.stdout, /volume:\/data/);
});

t2('--ulimit, --shm-size, --sysctl, --group-add, --oom-score-adj, --device, --pid/--ipc/--uts host, --cidfile', async t => {
  const { r } = await setup(t);
  const inside = await out(t, r, ['--ulimit', 'nofile=512:1024', '--ulimit', 'nproc=100', '--shm-size', '32m', '--sysctl', 'kernel.shmmax=12345',
    '--group-add', '10', '--group-add', 'nogroup', '--oom-score-adj', '500', '--device', '/dev/null:/dev/mynull:rw'],
  ['sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -u; df -k /dev/shm | tail -1; cat /proc/sys/kernel/shmmax; id -G; cat /proc/self/oom_score_adj; ls -l /dev/mynull; echo x > /dev/mynull && echo wrote']);
  const lines = inside.split('\n');
  t.deepEqual(lines.slice(0, 3), ['512', '1024', '100'], inside);
  t.regex(lines[3], /^shm\s+32768\s/);
  t.is(lines[4], '12345');
  t.is(lines[5], '0 10 65534');
  t.is(lines[6], '500');
  t.regex(lines[7], /^crw-rw-rw- .* 1, +3 .*\/dev\/mynull$/);
  t.is(lines[8], 'wrote');
  // the host's namespaces: our pid is visible, the same IPC namespace and hostname
  t.is(await out(t, r, ['--pid', 'host'], ['sh', '-c', `test -d /proc/${process.pid} && echo sees-host`]), 'sees-host\n');
  t.is(await out(t, r, ['--ipc', 'host'], ['readlink', '/proc/self/ns/ipc']), readlinkSync('/proc/self/ns/ipc') + '\n');
  t.is(await out(t, r, ['--uts', 'host'], ['hostname']), hostname() + '\n');
  t.not(await out(t, r, [], ['readlink', '/proc/self/ns/ipc']), readlinkSync('/proc/self/ns/ipc') + '\n', 'control: a private IPC namespace');
  // --device perms: a node no default rule allows is usable only as the rule says (v1 devices controller)
  const loop = ['/dev/loop7', '/dev/loop0'].find(existsSync);
  if (loop && existsSync('/sys/fs/cgroup/devices')) {
    t.is(await out(t, r, ['--device', `${loop}:/dev/d:w`], ['sh', '-c', 'head -c1 /dev/d >/dev/null 2>&1 && echo read || echo denied']), 'denied\n');
    t.is(await out(t, r, ['--device', `${loop}:/dev/d:r`], ['sh', '-c', 'head -c1 /dev/d >/dev/null 2>&1 && echo read || echo denied']), 'read\n');
  }
  const cid = join(tempDir(t), 'cid');
  const first = await r(['run', '-d', '--cidfile', cid, 'test/bb:1', 'sleep', '100']);
  t.is(first.code, 0, describe(first));
  t.is(readFileSync(cid, 'utf8'), first.stdout.trim());
  const again = await r(['run', '--rm', '--cidfile', cid, 'test/bb:1', 'true']);
  t.is(again.code, 125);
  t.regex(again.stderr, /Container ID file found, make sure the other container isn't running or delete /);
  const insp = await inspect(r, first.stdout.trim());
  t.is(insp.HostConfig.ShmSize, 67108864);
  const lim = await r(['create', '--ulimit', 'nofile=100:200', '--pid', 'host', '--sysctl', 'net.ipv4.ip_forward=1', '--oom-score-adj', '-5', 'test/bb:1', 'true']);
  const hc = (await inspect(r, lim.stdout.trim())).HostConfig;
  t.deepEqual(hc.Ulimits, [{ Name: 'nofile', Soft: 100, Hard: 200 }]);
  t.is(hc.PidMode, 'host');
  t.is(hc.IpcMode, 'private');
  t.deepEqual(hc.Sysctls, { 'net.ipv4.ip_forward': '1' });
  t.is(hc.OomScoreAdj, -5);
});
