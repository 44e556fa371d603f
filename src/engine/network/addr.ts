// IPv4 addresses and subnets as numbers: parsing, containment, overlap.
import { TsrunError } from '../../runtime/errors';

export interface Subnet { base: number; bits: number }

export function ipToInt(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new TsrunError(`invalid IPv4 address: ${s}`, 125);
  return ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]);
}

export function isIPv4(s: string): boolean {
  try { ipToInt(s); return true; } catch { return false; }
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

export function parseCidr(s: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m || Number(m[2]) > 32) throw new TsrunError(`invalid subnet ${s}: expected an IPv4 CIDR such as 172.20.0.0/16`, 125);
  const bits = Number(m[2]);
  return { base: (ipToInt(m[1]) & mask(bits)) >>> 0, bits };
}

export function formatCidr(s: Subnet): string {
  return `${intToIp(s.base)}/${s.bits}`;
}

export function contains(s: Subnet, ip: number): boolean {
  return ((ip & mask(s.bits)) >>> 0) === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const bits = Math.min(a.bits, b.bits);
  return ((a.base & mask(bits)) >>> 0) === ((b.base & mask(bits)) >>> 0);
}

/** The usable host addresses of a subnet: [first, last] (network and broadcast excluded). */
export function hostRange(s: Subnet): [number, number] {
  const size = 2 ** (32 - s.bits);
  return size <= 2 ? [s.base, s.base + size - 1] : [s.base + 1, s.base + size - 2];
}

/** Docker's MAC for an address: 02:42 followed by the four bytes of the IPv4 address. */
export function macFor(ip: number): string {
  return ['02', '42', ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
