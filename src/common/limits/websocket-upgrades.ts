import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { AppError, ErrorCode } from '../errors/app-error.js';
import { sendProblem } from '../filters/problem-details.filter.js';

/**
 * WebSocket upgrades are served at `paths` only (GraphQL subscriptions at
 * /graphql). Once something listens for upgrades, Node hands every request
 * asking for one to it, and the router would answer an upgrade to any other
 * route over a socket no HTTP parser owns any more, which then stays open,
 * counted as busy by the connection cap. So an upgrade elsewhere is answered
 * 404 before anything else reads it, and the socket of any upgrade request
 * answered over HTTP (refused, rate limited) is closed once the answer is out.
 */
export function confineWebsocketUpgrades(fastify: FastifyInstance, paths: readonly string[]): void {
  fastify.addHook('onRequest', async (request, reply) => {
    if (!isUpgrade(request.raw)) return;
    const path = request.url.split('?')[0] ?? '/';
    if (paths.includes(path)) return;
    sendProblem(
      new AppError(
        ErrorCode.NOT_FOUND,
        `no WebSocket is served at ${path.slice(0, 200)}; GraphQL subscriptions are at ${paths.join(', ')}`,
      ),
      request,
      reply,
    );
    return reply;
  });
  fastify.addHook('onResponse', async (request) => {
    if (isUpgrade(request.raw)) request.raw.socket.destroy();
  });
}

/** Whether Node handed this request to the 'upgrade' listeners (its parser sets `upgrade` then). */
function isUpgrade(raw: IncomingMessage): boolean {
  return (raw as IncomingMessage & { upgrade?: boolean }).upgrade === true;
}
