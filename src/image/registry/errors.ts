// Registry errors: one line, with the registry's own error code and message when it sent
// the distribution error JSON ({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}).
import { TsrunError } from '../../runtime/errors';

export class RegistryError extends TsrunError {
  constructor(message: string, readonly status?: number, readonly code?: string, readonly retryable = false) {
    super(message.split('\n')[0]);
  }
}

/** A blob or manifest whose bytes do not hash to the digest they were asked for. */
export class DigestMismatchError extends RegistryError {
  constructor(what: string, readonly expected: string, readonly actual: string) {
    super(`${what}: digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** "MANIFEST_UNKNOWN" -> "manifest unknown" (what Docker prints for a code). */
function codeText(code: string): string {
  return code.toLowerCase().replace(/_/g, ' ');
}

const STATUS_TEXT: Record<number, string> = {
  400: 'bad request', 401: 'unauthorized: authentication required', 403: 'denied: requested access to the resource is denied',
  404: 'not found', 405: 'unsupported: the operation is unsupported', 409: 'conflict', 413: 'request entity too large',
  416: 'requested range not satisfiable', 429: 'toomanyrequests: too many requests', 500: 'internal server error',
  502: 'bad gateway', 503: 'service unavailable', 504: 'gateway timeout',
};

/** The message for an HTTP error response: from the distribution error JSON, else the status. */
export function errorFromResponse(status: number, body: Buffer | undefined, what?: string): RegistryError {
  let msg = '';
  let code: string | undefined;
  if (body && body.length) {
    try {
      const j = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[]; error?: string; details?: string; message?: string };
      if (Array.isArray(j.errors) && j.errors.length) {
        code = j.errors[0].code;
        msg = j.errors.map((e) => {
          const c = e.code ? codeText(e.code) : '';
          const m = (e.message ?? '').trim();
          if (!c) return m;
          if (!m || m.toLowerCase() === c) return c;
          return `${c}: ${m}`;
        }).filter(Boolean).join('; ');
      } else if (typeof j.error === 'string') {
        msg = j.error + (typeof j.details === 'string' && j.details ? `: ${j.details}` : '');
      } else if (typeof j.message === 'string') {
        msg = j.message;
      }
    } catch { /* not JSON */ }
    if (!msg) {
      const text = body.toString('utf8').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
      if (text && text.length <= 200) msg = text;
    }
  }
  if (!msg) msg = STATUS_TEXT[status] ?? `unexpected HTTP status ${status}`;
  if (status === 401 && !/unauthorized|authentication/i.test(msg)) msg = `unauthorized: ${msg}`;
  if (what) msg = `${what}: ${msg}`;
  return new RegistryError(msg, status, code, status >= 500 || status === 429);
}

const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

/** A network failure (connection reset, timeout...) or a 5xx/429 worth another try. */
export function isRetryable(e: unknown): boolean {
  if (e instanceof RegistryError) return e.retryable;
  const err = e as NodeJS.ErrnoException;
  if (!err) return false;
  if (err.code && RETRYABLE_CODES.has(err.code)) return true;
  return /socket hang up|aborted|premature close/i.test(err.message ?? '');
}

/** One line for any error (network errors keep their code: "connect ECONNREFUSED 127.0.0.1:5000"). */
export function errorText(e: unknown): string {
  const err = e as Error;
  return String(err?.message ?? e).split('\n')[0];
}

/**
 * A network error's message made readable: OpenSSL's "write EPROTO 80..:error:0A00010B:SSL
 * routines:ssl3_get_record:wrong version number:../deps/..." becomes "https://host/v2/: TLS
 * handshake failed (wrong version number): is it a plain-HTTP registry? ...". The code stays.
 */
export function netError(e: unknown, url: string, insecureHint: boolean): unknown {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.message !== 'string') return e;
  const m = /SSL routines:[^:]*:([^:]+)/.exec(err.message);
  if (!m && !/^ERR_SSL|^ERR_TLS|^EPROTO$/.test(err.code ?? '')) return e;
  const reason = m ? m[1] : err.message.split('\n')[0];
  const hint = /wrong version number|packet length too long|http request/i.test(reason)
    ? (insecureHint ? ': the server does not speak HTTPS (for a plain-HTTP registry, add it to TSRUN_INSECURE_REGISTRIES)' : ': the server does not speak HTTPS')
    : '';
  const out = new Error(`${url}: TLS handshake failed (${reason})${hint}`) as NodeJS.ErrnoException;
  out.code = err.code;
  return out;
}
