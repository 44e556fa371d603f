// `tsrun info [--format json|TEMPLATE]`: docker info's essentials for this host and state root.
// It only reads: the container and image records, the mount table, /proc, /etc/os-release.
import os = require('os');
import { parse, str, type Globals } from '../args';
import { TsrunError } from '../../runtime/errors';
import { listContainers } from '../../engine/containers';
import { containerState } from '../../engine/lifecycle';
import { ImageStore } from '../../image/store';
import { cgroupLayout, iptablesInfo, osPrettyName, rootFacts, humanBytes } from '../../engine/hostcheck';
import { tsrunVersion, API_VERSION } from './version';

/** docker's names for the backing filesystem (overlay2's "Backing Filesystem"). */
const DOCKER_FS: Record<string, string> = { ext2: 'extfs', ext3: 'extfs', ext4: 'extfs', overlay: 'overlayfs' };

export function collectInfo(root: string): Record<string, unknown> {
  let running = 0, paused = 0, stopped = 0;
  const containers = listContainers(root);
  for (const c of containers) {
    let s: string;
    try { s = containerState(root, c).status; } catch { s = 'dead'; }
    if (s === 'running' || s === 'restarting') running++;
    else if (s === 'paused') paused++;
    else stopped++;
  }
  let images = 0;
  try { images = new ImageStore(root).list().length; } catch { /* unreadable images.json: 0 */ }
  const m = cgroupLayout();
  const cgroupVersion = m.mode === 'unified' ? '2' : '1';
  const cgroupText = m.mode === 'hybrid' ? `1 (hybrid: cgroup2 at ${m.unified})` : cgroupVersion;
  const fsFacts = rootFacts(root);
  const fsType = fsFacts.fsType ?? 'unknown';
  const ipt = iptablesInfo();
  const version = tsrunVersion();
  return {
    ID: '',
    Containers: containers.length,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: stopped,
    Images: images,
    Driver: 'overlay2',
    DriverStatus: [['Backing Filesystem', DOCKER_FS[fsType] ?? fsType]],
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: cgroupVersion,
    CgroupMode: m.mode,
    CgroupText: cgroupText,
    Runtimes: { tsrun: { path: 'tsrun', runtimeType: 'io.containerd.runc.v2' } },
    DefaultRuntime: 'tsrun',
    SecurityOptions: ['name=seccomp,profile=default'],
    KernelVersion: os.release(),
    OperatingSystem: osPrettyName(),
    OSType: 'linux',
    Architecture: os.machine(),
    NCPU: os.availableParallelism(),
    MemTotal: os.totalmem(),
    Name: os.hostname(),
    DockerRootDir: fsFacts.root,
    ServerVersion: version,
    ApiVersion: API_VERSION,
    IptablesBackend: ipt.backend ?? (ipt.found['iptables-nft'] || ipt.found['iptables-legacy'] ? 'unknown' : 'none'),
  };
}

export default function (argv: string[], g: Globals): number {
  const p = parse(argv, { str: ['format'], alias: { f: 'format' } }, 'info');
  const format = str(p, 'format');
  const i = collectInfo(g.root);
  if (format === 'json' || format === '{{json .}}') {
    process.stdout.write(JSON.stringify(i) + '\n');
    return 0;
  }
  if (format) {
    // the simplest of docker's templates: {{.Field}} and {{json .Field}}
    const out = format.replace(/\{\{\s*(json\s+)?\.(\w+)\s*\}\}/g, (_m, json: string | undefined, k: string) => {
      if (!(k in i)) throw new TsrunError(`info: template: no field "${k}"`);
      const v = i[k];
      return json || typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
    if (/\{\{/.test(out)) throw new TsrunError('info: --format supports json, {{.Field}} and {{json .Field}}');
    process.stdout.write(out + '\n');
    return 0;
  }
  const lines = [
    'Server:',
    ` Containers: ${i.Containers}`,
    `  Running: ${i.ContainersRunning}`,
    `  Paused: ${i.ContainersPaused}`,
    `  Stopped: ${i.ContainersStopped}`,
    ` Images: ${i.Images}`,
    ` Server Version: ${i.ServerVersion}`,
    ` Storage Driver: overlay2`,
    `  Backing Filesystem: ${(i.DriverStatus as string[][])[0][1]}`,
    ` Logging Driver: json-file`,
    ` Cgroup Driver: cgroupfs`,
    ` Cgroup Version: ${i.CgroupText}`,
    ` Runtimes: tsrun (runc-compatible)`,
    ` Default Runtime: tsrun`,
    ` Security Options:`,
    `  seccomp`,
    `   Profile: default`,
    ` Kernel Version: ${i.KernelVersion}`,
    ` Operating System: ${i.OperatingSystem}`,
    ` OSType: linux`,
    ` Architecture: ${i.Architecture}`,
    ` CPUs: ${i.NCPU}`,
    ` Total Memory: ${humanBytes(i.MemTotal as number)}`,
    ` Name: ${i.Name}`,
    ` Root Dir: ${i.DockerRootDir}`,
    ` Iptables Backend: ${i.IptablesBackend}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
