import type { FastifyInstance } from 'fastify';

/** For everything but HTML: nothing may be loaded, run or framed on the strength of a response. */
const CSP_API = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * For HTML (the Swagger UI of /docs, served from this gateway): its own
 * scripts, styles (the page has an inline style block) and images only.
 */
const CSP_HTML =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * Headers that keep a browser from misreading the gateway's answers: no MIME
 * sniffing, no referrer sent on, no framing, a Content-Security-Policy (strict
 * for JSON, enough for the docs page for HTML), and no X-Powered-By. Applied to
 * every response, errors and 429s included.
 */
export function registerSecurityHeaders(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    const type = String(reply.getHeader('content-type') ?? '');
    void reply
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('content-security-policy', type.startsWith('text/html') ? CSP_HTML : CSP_API)
      .removeHeader('x-powered-by');
    done(null, payload);
  });
}
