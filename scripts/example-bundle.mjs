#!/usr/bin/env node
// The one config.json generator shared by scripts/install.sh (examples/busybox),
// the tests (test/helpers/bundle.mjs) and the benchmark (bench/startup.mjs).
//
// defaultSpec() returns what `runc spec` (runc 1.1.5) writes, except:
//   - process.terminal is false (tests and the example run without a tty);
//   - a cgroup namespace is added to pid, network, ipc, uts, mount;
//   - hostname is "tsrun" and process.args is set by the caller.
//
// CLI: node scripts/example-bundle.mjs BUNDLE_DIR [-- ARGS...]
//   writes BUNDLE_DIR/config.json (root.path "rootfs"; the rootfs itself is built by
//   scripts/make-test-image.sh BUNDLE_DIR/rootfs). Default args print a greeting.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export const EXAMPLE_ARGS = [
  '/bin/sh', '-c',
  'echo "Hello from a tsrun container: pid $$, hostname $(hostname)"',
];

/**
 * @param {object} [opts]
 * @param {string[]} [opts.args]      process.args (default: EXAMPLE_ARGS)
 * @param {boolean} [opts.terminal]   process.terminal (default false)
 * @param {string} [opts.hostname]    (default "tsrun")
 * @param {boolean} [opts.cgroupns]   add a cgroup namespace (default true)
 * @param {boolean} [opts.readonly]   root.readonly (default true, as runc spec)
 */
export function defaultSpec(opts = {}) {
  const { args = EXAMPLE_ARGS, terminal = false, hostname = 'tsrun', cgroupns = true, readonly = true } = opts;
  const namespaces = [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (cgroupns) namespaces.push({ type: 'cgroup' });
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal,
      user: { uid: 0, gid: 0 },
      args: [...args],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
        ambient: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly },
    hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      {
        destination: '/dev/pts', type: 'devpts', source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces,
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Writes DIR/config.json; returns the spec. */
export function writeBundleConfig(dir, spec = defaultSpec()) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2) + '\n');
  return spec;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const argv = process.argv.slice(2);
  const dash = argv.indexOf('--');
  const positional = dash < 0 ? argv : argv.slice(0, dash);
  if (positional.length !== 1 || positional[0].startsWith('-')) {
    console.error('usage: node scripts/example-bundle.mjs BUNDLE_DIR [-- ARGS...]');
    process.exit(2);
  }
  const args = dash < 0 ? undefined : argv.slice(dash + 1);
  const dir = resolve(positional[0]);
  writeBundleConfig(dir, defaultSpec(args?.length ? { args } : {}));
  console.log(`wrote ${join(dir, 'config.json')}`);
}
