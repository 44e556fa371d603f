// docker's events: one JSON line per event in <root>/events.jsonl, appended (O_APPEND, one write a
// line) by the CLI commands and, for die/oom and restarts, by the supervisor. When the file passes
// MAX_BYTES it becomes events.jsonl.1 (one older file is kept).
import fs = require('fs');
import path = require('path');
import type { ContainerRecord } from './containers';

export const MAX_BYTES = 1 << 20;

export interface EventLine {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

export function eventsFile(root: string): string {
  return path.join(root, 'events.jsonl');
}

/** Append one event; never fails the command that reports it. */
export function logEvent(root: string, type: string, action: string, id: string, attrs: Record<string, string> = {}): void {
  const ns = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  const line = `{"Type":${JSON.stringify(type)},"Action":${JSON.stringify(action)},"Actor":{"ID":${JSON.stringify(id)},"Attributes":${JSON.stringify(attrs)}},"time":${ns / 1_000_000_000n},"timeNano":${ns}}\n`;
  const file = eventsFile(root);
  try {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
    try {
      fs.writeSync(fd, line);
      if (fs.fstatSync(fd).size > MAX_BYTES) fs.renameSync(file, file + '.1');
    } finally {
      fs.closeSync(fd);
    }
  } catch { /* no root yet, or read-only: events are best effort */ }
}

/** A network event with docker's attributes: connect/disconnect name the container. */
export function networkEvent(root: string, n: { id: string; name: string }, action: string, container?: string): void {
  logEvent(root, 'network', action, n.id, { ...(container ? { container } : {}), name: n.name, type: 'bridge' });
}

/** A container event with docker's attributes: image, name, the labels, and `extra` (exitCode, signal...). */
export function containerEvent(root: string, c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
  logEvent(root, 'container', action, c.id, { ...(c.labels ?? {}), image: c.image, name: c.name, ...extra });
}
