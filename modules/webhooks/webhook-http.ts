import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pinnedLookup, type Destination } from '#src/net/destination-policy.js';

/** How much of a response body the delivery log keeps. */
export const RESPONSE_BYTES_KEPT = 1024;
/** The longest Retry-After honoured (a receiver cannot park a delivery for ever). */
const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

/** What one attempt came to. */
export interface AttemptResult {
  /** The response's status; null when none came (a network error, a timeout). */
  statusCode: number | null;
  /** From the request's start to the response's end (or the first RESPONSE_BYTES_KEPT bytes). */
  latencyMs: number;
  /** Why it failed without a response, or with a status that is not 2xx; null on success. */
  error: string | null;
  /** The first bytes of the response body, as text; null when none came. */
  responseBody: string | null;
  /** A Retry-After of a 429 or 503, in ms (capped at 24 h); null otherwise. */
  retryAfterMs: number | null;
}

/**
 * POSTs `body` to a checked destination and reads the answer. The connection
 * goes to an address the check allowed (`pinnedLookup`); the TLS server name
 * and the Host header stay the URL's. A redirect is an answer like any other
 * (3xx: a failure), never followed. No connection is reused.
 */
export function postDelivery(
  destination: Destination,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<AttemptResult> {
  const started = performance.now();
  const { url } = destination;
  const payload = Buffer.from(body, 'utf8');
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: Omit<AttemptResult, 'latencyMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...result, latencyMs: Math.round(performance.now() - started) });
    };
    const req = send(
      url,
      {
        method: 'POST',
        agent: false,
        lookup: pinnedLookup(destination.addresses),
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': String(payload.length),
          'user-agent': 'virtgate-webhooks',
        },
      },
      (res) => readAnswer(res, finish),
    );
    const timer = setTimeout(
      () =>
        finish({
          statusCode: null,
          error: `no complete answer within ${timeoutMs} ms`,
          responseBody: null,
          retryAfterMs: null,
        }),
      timeoutMs,
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish({
        statusCode: null,
        error: `${err.code ?? 'error'}: ${err.message}`.slice(0, 500),
        responseBody: null,
        retryAfterMs: null,
      }),
    );
    req.end(payload);
  });
}

function readAnswer(
  res: IncomingMessage,
  finish: (result: Omit<AttemptResult, 'latencyMs'>) => void,
): void {
  const status = res.statusCode ?? 0;
  const chunks: Buffer[] = [];
  let kept = 0;
  const done = (): void => {
    const ok = status >= 200 && status < 300;
    finish({
      statusCode: status,
      error: ok ? null : describeStatus(status, res.headers.location),
      responseBody: Buffer.concat(chunks).subarray(0, RESPONSE_BYTES_KEPT).toString('utf8'),
      retryAfterMs:
        status === 429 || status === 503 ? retryAfterOf(res.headers['retry-after']) : null,
    });
  };
  res.on('data', (chunk: Buffer) => {
    if (kept < RESPONSE_BYTES_KEPT) chunks.push(chunk);
    kept += chunk.length;
    if (kept >= RESPONSE_BYTES_KEPT) done();
  });
  res.on('end', done);
  res.on('error', done);
}

function describeStatus(status: number, location: string | undefined): string {
  if (status >= 300 && status < 400) {
    return `answered ${status} (a redirect${location ? ` to ${location.slice(0, 200)}` : ''}): redirects are not followed; update the URL`;
  }
  return `answered ${status}`;
}

/** Retry-After in ms: delay-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterOf(header: string | undefined, now = Date.now()): number | null {
  if (header === undefined) return null;
  const value = header.trim();
  const ms = /^\d{1,10}$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return null;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}
