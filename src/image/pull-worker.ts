// A pull worker thread (dist/pull-worker.js): runs fetchLayer (layer-fetch.ts) for the tasks the
// pull sends it, so that the layers' hashing, decompression and unpacking use more than one core.
// Messages in: { type: 'client', state } (the pull's registry client: scheme, credentials, tokens;
// before the first task), { type: 'task', n, task } and { type: 'abort', message }; out:
// { type: 'ready' } once loaded, { type: 'progress', e }, { type: 'done', n, result } and
// { type: 'error', n, message }.
import { parentPort, workerData } from 'worker_threads';
import { ContentStore } from './store/content';
import { LayerStore } from './store/layers';
import { RegistryClient, type ClientState } from './registry/client';
import { Abort, fetchLayer, type LayerTask } from './layer-fetch';
import type { ProgressEvent } from './types';
import { trace } from '../runtime/trace';
trace('pull worker: loaded');

export interface PullWorkerData { root: string; domain: string; repo: string }

const data = workerData as PullWorkerData;
const port = parentPort!;
const stores = { content: new ContentStore(data.root), layers: new LayerStore(data.root) };
let client: RegistryClient | undefined;
const abort = new Abort();
const progress = (e: ProgressEvent) => port.postMessage({ type: 'progress', e });

port.on('message', (m: { type: 'client'; state: ClientState } | { type: 'task'; n: number; task: LayerTask } | { type: 'abort'; message: string }) => {
  if (m.type === 'abort') { abort.abort(new Error(m.message)); return; }
  if (m.type === 'client') { client = new RegistryClient(data.domain, { credentials: m.state.credentials, state: m.state }); return; }
  if (!client) { port.postMessage({ type: 'error', n: m.n, message: 'pull worker: no client' }); return; }
  trace(`pull worker: task ${m.task.id}`);
  fetchLayer(stores, client, data.repo, m.task, progress, abort).then(
    (result) => { trace(`pull worker: done ${m.task.id}`); port.postMessage({ type: 'done', n: m.n, result }); },
    (e: unknown) => port.postMessage({ type: 'error', n: m.n, message: e instanceof Error ? e.message : String(e) }),
  );
});
port.postMessage({ type: 'ready' });
