// tsrun doctor / info / version, and the Vagrantfile. doctor only reads the host: these tests
// run it on this machine as it is, and provoke FAILs through --root and TSRUN_DOCTOR_NATIVE_DIR.
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { rt, newRoot, describe, tsrunOnly, childEnv, exec, REPO, tempDir } from './helpers/index.mjs';

const CHECKS = ['running as root', 'kernel', 'namespaces', 'user namespaces', 'cgroup mode', 'cgroup controllers',
  'cgroups writable', 'overlayfs', 'seccomp', 'iptables', 'ip_forward', 'binaries', 'node', 'build', 'musl-gcc',
  'init (--init)', 'state root', 'NODE_EXTRA_CA_CERTS'];

/** The cgroup layout as src/runtime/cgroups/detect.ts decides it (topmost mount per mount point). */
function cgroupMode() {
  const fsAt = new Map();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep >= 0) fsAt.set(line.slice(0, sep).split(' ')[4], line.slice(sep + 3).split(' ')[0]);
  }
  if (fsAt.get('/sys/fs/cgroup') === 'cgroup2') return 'unified';
  if (fsAt.get('/sys/fs/cgroup/unified') === 'cgroup2') return 'hybrid';
  return 'legacy';
}

const LINE = /^(ok  |warn|FAIL) (\S[^:]*)(?::|$)/;

function lines(stdout) {
  return stdout.split('\n').filter(Boolean);
}

tsrunOnly(test)('tsrun-only: doctor passes on this host, one line per check, and names the cgroup mode', async t => {
  const r = rt(newRoot(t));
  const res = await r(['doctor']);
  t.is(res.code, 0, describe(res));
  const out = lines(res.stdout);
  const summary = out.pop();
  t.regex(summary, /^18 checks: \d+ ok, \d+ warnings?, 0 failed \(\d+ ms\)/, describe(res));
  t.deepEqual(out.map(l => LINE.exec(l)?.[2]), CHECKS, describe(res));
  for (const l of out) if (!l.startsWith('ok')) t.regex(l, / — fix: \S/, `a warn/FAIL line without its fix: ${l}`);
  t.false(out.some(l => l.startsWith('FAIL')), describe(res));
  const mode = out.find(l => / cgroup mode: /.test(l));
  t.true(mode.includes(cgroupMode()), mode);
  if (cgroupMode() === 'hybrid') t.regex(mode, /crun and podman refuse hybrid/);
  t.is(res.stderr, '');
});

tsrunOnly(test)('tsrun-only: doctor --format json is an array of {name, status, detail, fix?}', async t => {
  const res = await rt(newRoot(t))(['doctor', '--format', 'json']);
  t.is(res.code, 0, describe(res));
  const checks = JSON.parse(res.stdout);
  t.true(Array.isArray(checks));
  t.deepEqual(checks.map(c => c.name), CHECKS);
  for (const c of checks) {
    t.true(['ok', 'warn', 'fail'].includes(c.status), JSON.stringify(c));
    t.is(typeof c.detail, 'string');
    if (c.status !== 'ok') t.is(typeof c.fix, 'string', JSON.stringify(c));
  }
  t.false(checks.some(c => c.status === 'fail'), res.stdout);
  t.is(checks.find(c => c.name === 'running as root').status, 'ok');
  // the tests' environment has no NODE_EXTRA_CA_CERTS (see helpers/runtime.mjs)
  t.is(checks.find(c => c.name === 'NODE_EXTRA_CA_CERTS').status, 'ok');
});

tsrunOnly(test)('tsrun-only: doctor FAILs (exit 1) on a state root that cannot exist', async t => {
  const root = newRoot(t);
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  for (const bad of ['/proc/tsrun-doctor-test', file, join(file, 'below')]) {
    const res = await rt(bad)(['doctor']);
    t.is(res.code, 1, `--root ${bad}: ${describe(res)}`);
    const line = lines(res.stdout).find(l => l.startsWith('FAIL state root: '));
    t.truthy(line, `--root ${bad}: no FAIL state root line\n${describe(res)}`);
    t.regex(line, / — fix: /);
    t.regex(lines(res.stdout).pop(), /, 1 failed .*FAIL/);
  }
  const json = await rt('/proc/tsrun-doctor-test')(['doctor', '--format', 'json']);
  t.is(json.code, 1, describe(json));
  t.is(JSON.parse(json.stdout).find(c => c.name === 'state root').status, 'fail');
  t.false(existsSync('/proc/tsrun-doctor-test'));
});

tsrunOnly(test)('tsrun-only: doctor FAILs when the native build is missing (TSRUN_DOCTOR_NATIVE_DIR)', async t => {
  const res = await rt(newRoot(t))(['doctor'], { env: childEnv({ TSRUN_DOCTOR_NATIVE_DIR: '/nonexistent/tsrun-build' }) });
  t.is(res.code, 1, describe(res));
  t.regex(res.stdout, /^FAIL build: missing \/nonexistent\/tsrun-build\/libtsrun\.so.* — fix: cd \S+ && npm run build$/m);
});

tsrunOnly(test)('tsrun-only: doctor only reads: a missing root is not created, and NODE_EXTRA_CA_CERTS is a warning', async t => {
  const root = join(newRoot(t), 'not', 'yet');
  const res = await rt(root)(['doctor'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent-ca.pem' } });
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /^ok {3}state root: \S+\/not\/yet does not exist yet/m);
  t.regex(res.stdout, /^warn NODE_EXTRA_CA_CERTS: .* — fix: unset NODE_EXTRA_CA_CERTS$/m);
  t.false(existsSync(root));
});

tsrunOnly(test)('tsrun-only: info prints docker info\'s essentials; --format json parses', async t => {
  const root = newRoot(t);
  // one stopped engine container (a record only: nothing runs)
  const id = 'd'.repeat(64);
  mkdirSync(join(root, 'containers', id), { recursive: true });
  writeFileSync(join(root, 'containers', id, 'container.json'), JSON.stringify({
    id, name: 'doctor_test', image: 'busybox', imageId: 'sha256:' + 'e'.repeat(64), created: new Date().toISOString(),
    args: ['true'], autoRemove: false, tty: false, exitCode: 0, finishedAt: new Date().toISOString(),
  }));
  const r = rt(root);
  const res = await r(['info']);
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /^ Containers: 1$/m);
  t.regex(res.stdout, /^ {2}Stopped: 1$/m);
  t.regex(res.stdout, /^ Images: 0$/m);
  t.regex(res.stdout, /^ Storage Driver: overlay2$/m);
  t.regex(res.stdout, /^ {2}Backing Filesystem: \S+/m);
  t.regex(res.stdout, /^ Cgroup Version: [12]/m);
  if (cgroupMode() === 'hybrid') t.regex(res.stdout, /^ Cgroup Version: 1 \(hybrid: cgroup2 at \/sys\/fs\/cgroup\/unified\)$/m);
  t.regex(res.stdout, /^ Root Dir: /m);
  t.true(res.stdout.includes(` Root Dir: ${root}\n`), describe(res));
  const json = await r(['info', '--format', 'json']);
  t.is(json.code, 0, describe(json));
  const info = JSON.parse(json.stdout);
  t.like(info, { Containers: 1, ContainersStopped: 1, Images: 0, Driver: 'overlay2', CgroupDriver: 'cgroupfs', OSType: 'linux', DockerRootDir: root });
  t.is(info.CgroupVersion, cgroupMode() === 'unified' ? '2' : '1');
  const tpl = await r(['info', '--format', '{{.Driver}} {{.CgroupMode}}']);
  t.is(tpl.stdout, `overlay2 ${cgroupMode()}\n`, describe(tpl));
});

tsrunOnly(test)('tsrun-only: version prints Client and Server blocks; --format json', async t => {
  const r = rt(newRoot(t));
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const res = await r(['version']);
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /^Client:$/m);
  t.regex(res.stdout, /^Server: /m);
  t.regex(res.stdout, new RegExp(`^ Version: +${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
  t.regex(res.stdout, /^ API version: +1\.44$/m);
  t.regex(res.stdout, new RegExp(`^ Node version: +${process.version.replace(/\./g, '\\.')}$`, 'm'));
  t.regex(res.stdout, /^ OS\/Arch: +linux\/\w+$/m);
  const json = await r(['version', '--format', 'json']);
  t.is(json.code, 0, describe(json));
  const v = JSON.parse(json.stdout);
  t.is(v.Client.Version, pkg.version);
  t.is(v.Server.Version, pkg.version);
  t.is(v.Client.ApiVersion, '1.44');
  const tpl = await r(['version', '--format', '{{.Server.Version}} {{.Client.ApiVersion}}']);
  t.is(tpl.stdout, `${pkg.version} 1.44\n`, describe(tpl));
});

const vagrant = existsSync('/usr/bin/vagrant') ? test : test.skip;
vagrant('Vagrantfile: vagrant validate (when vagrant is installed)', async t => {
  // vagrant keeps its machine state in .vagrant/ next to the Vagrantfile: put it in a temp dir
  const dot = mkdtempSync(join(tmpdir(), 'tsrun-vagrant-'));
  t.teardown(() => rmSync(dot, { recursive: true, force: true }));
  const res = await exec('/usr/bin/vagrant', ['validate'], { cwd: REPO, timeout: 60_000, env: childEnv({ VAGRANT_DOTFILE_PATH: join(dot, 'dot') }) });
  t.is(res.code, 0, describe(res));
  t.regex(res.stdout, /validated successfully/);
});

tsrunOnly(test)('doctor: a missing static tini is a warning that names the package (run --init needs it)', async t => {
  const r = rt(newRoot(t));
  const res = await r(['doctor'], { env: childEnv({ TSRUN_INIT_BINARY: '/nonexistent/tini-static' }) });
  const line = lines(res.stdout).find(l => LINE.exec(l)?.[2] === 'init (--init)');
  t.regex(line ?? '', /^warn init \(--init\): no static init binary \(\/nonexistent\/tini-static\).* — fix: apt-get install tini$/, describe(res));
  const good = await r(['doctor']);
  t.regex(lines(good.stdout).find(l => LINE.exec(l)?.[2] === 'init (--init)') ?? '', /^ok   init \(--init\): \/usr\/bin\/tini-static$/);
});

test('Vagrantfile: the VM is provisioned by the same install script the README and CI run, then doctor', t => {
  // What a Mac user's `vagrant up` runs inside the VM ...
  const vf = readFileSync(join(REPO, 'Vagrantfile'), 'utf8');
  const inline = vf.match(/inline: <<-SHELL\n([\s\S]*?)\n\s*SHELL/);
  t.truthy(inline, 'Vagrantfile has an inline shell provisioner');
  const cmds = inline[1].split('\n').map(l => l.trim()).filter(l => l && !l.startsWith('#') && !l.startsWith('set '));
  t.deepEqual(cmds, ['cd #{GUEST_DIR}', 'sudo scripts/install.sh', 'sudo bin/tsrun doctor']);
  // ... is what this suite ran before the tests (scripts/test.sh -> scripts/install.sh) and the
  // doctor tests above run; CI's entry point is scripts/test.sh.
  t.regex(readFileSync(join(REPO, 'scripts', 'test.sh'), 'utf8'), /^if ! scripts\/install\.sh /m);
  t.regex(readFileSync(join(REPO, '.ci', 'run'), 'utf8'), /scripts\/test\.sh/);
});

tsrunOnly(test)('--help: every command prints its usage and the flags its parser takes, exits 0, and does nothing else', async t => {
  const root = join(tempDir(t), 'never-made');
  const r = rt(root);
  const cmds = ['run', 'create', 'start', 'exec', 'kill', 'ps', 'delete', 'state', 'list', 'pause', 'resume', 'unpause', 'update',
    'events', 'spec', 'plan', 'features', 'attach', 'commit', 'cp', 'export', 'history', 'images', 'import', 'inspect', 'load',
    'login', 'logout', 'logs', 'port', 'pull', 'push', 'rename', 'restart', 'rm', 'rmi', 'save', 'stats', 'stop', 'tag', 'top',
    'wait', 'doctor', 'info', 'version', 'container prune', 'container ls', 'container run', 'image prune', 'image ls',
    'network ls', 'volume create', 'volume ls', 'volume prune', 'system prune', 'system df'];
  for (const c of cmds) {
    const res = await r([...c.split(' '), '--help']);
    t.is(res.code, 0, `${c}: ${describe(res)}`);
    t.regex(res.stdout, /^\nUsage: {2}tsrun \S+/, c);
    t.is(res.stderr, '', c);
  }
  const run = await r(['run', '--help']);
  t.regex(run.stdout, /\n {2}-d, --detach {10,}Run container in background and print container ID\n/);
  t.regex(run.stdout, /\n {6}--name string {5,}Assign a name to the container\n/);
  t.regex(run.stdout, /\n {2}-p, --publish list {3,}\S/);
  t.false(existsSync(root), 'no state root was made');
  // after the image, --help is the container's argument
  const arg = await rt(newRoot(t))(['run', '--rm', 'no/such:image', 'sh', '--help']);
  t.not(arg.code, 0);
  t.regex(arg.stderr, /no\/such/);
});
