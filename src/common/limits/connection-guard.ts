import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/** At most one line about shed connections this often (the first at once). */
const REPORT_EVERY_MS = 10_000;
/** Descriptors a process needs beyond its client connections (Redis, libvirt, files). */
const FD_HEADROOM = 512;

/**
 * Holds the HTTP server to `max` open client connections without ever
 * refusing the next one while some are idle: a new connection beyond the cap
 * closes the idlest one (the connection that has had no request in flight for
 * longest: one that never sent anything, or a keep-alive left open), so a
 * flood of idle connections cannot lock out a health probe or a real client,
 * nor exhaust the process's file descriptors. Only when every connection has
 * a request in flight is the new one closed instead. What is shed is logged,
 * once when it starts and then as counts every 10 s while it goes on.
 *
 * Connections that send nothing are also ended by the server's headers
 * timeout (HTTP_HEADERS_TIMEOUT_MS); this guard is for floods faster than that.
 */
export function guardConnections(server: Server, max: number, logger: Logger): void {
  // Insertion order is idleness order: the first entry has been idle longest.
  const idle = new Set<Socket>();
  const inFlight = new Map<Socket, number>();
  let shed = 0;
  let refused = 0;
  let reportTimer: NodeJS.Timeout | undefined;
  const report = (): void => {
    reportTimer = undefined;
    if (shed === 0 && refused === 0) return;
    logger.warn(
      { shed, refused, maxConnections: max, open: idle.size + inFlight.size },
      'connection cap reached: closed the idlest connections (shed), or new ones when none was idle (refused)',
    );
    shed = 0;
    refused = 0;
    reportTimer = setTimeout(report, REPORT_EVERY_MS).unref();
  };
  const noted = (): void => {
    if (reportTimer === undefined) report();
  };

  server.on('connection', (socket: Socket) => {
    if (idle.size + inFlight.size >= max) {
      const idlest = idle.values().next();
      if (idlest.done === true) {
        refused++;
        noted();
        socket.destroy();
        return;
      }
      idle.delete(idlest.value);
      idlest.value.destroy();
      shed++;
      noted();
    }
    idle.add(socket);
    socket.once('close', () => {
      idle.delete(socket);
      inFlight.delete(socket);
    });
  });
  server.on('request', (req: { socket: Socket }, res: NodeJS.EventEmitter) => {
    const socket = req.socket;
    idle.delete(socket);
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      if (left > 0) {
        inFlight.set(socket, left);
        return;
      }
      inFlight.delete(socket);
      // Back to idle, as the most recently used.
      if (!socket.destroyed) idle.add(socket);
    });
  });
  // An upgraded connection (a GraphQL subscription's WebSocket) is in use for as long as it lives.
  server.on('upgrade', (req: { socket: Socket }) => {
    idle.delete(req.socket);
    inFlight.set(req.socket, 1);
  });
  server.once('close', () => clearTimeout(reportTimer));
  warnWhenDescriptorsShort(max, logger);
}

/** The cap is only a protection below the open-file limit: say so at start when it is not. */
function warnWhenDescriptorsShort(max: number, logger: Logger): void {
  let soft: number;
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(
      readFileSync('/proc/self/limits', 'utf8'),
    );
    if (!line || line[1] === 'unlimited') return;
    soft = Number(line[1]);
  } catch {
    return; // not Linux
  }
  if (soft < max + FD_HEADROOM) {
    logger.warn(
      { maxConnections: max, openFileLimit: soft },
      `HTTP_MAX_CONNECTIONS is too close to the open-file limit (ulimit -n): keep it at most ${soft - FD_HEADROOM}`,
    );
  }
}
