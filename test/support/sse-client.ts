import http from 'node:http';
import { waitFor } from './wait.js';

export interface SseEvent {
  id: string | null;
  event: string | null;
  data: string;
}

/**
 * A server-sent events client as a browser's EventSource reads the wire
 * (`id:`, `event:`, `data:` lines, a blank line ends an event, `:` comments),
 * over a real HTTP connection, keeping everything it heard.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  /** The body of a response that was not a stream (a problem document). */
  body = '';
  ended = false;
  private request: http.ClientRequest | null = null;
  private response: http.IncomingMessage | null = null;

  static async open(
    url: string,
    headers: Record<string, string>,
    options: { readPaused?: boolean } = {},
  ): Promise<SseClient> {
    const client = new SseClient();
    await new Promise<void>((resolve, reject) => {
      const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        client.response = res;
        client.status = res.statusCode ?? 0;
        client.headers = res.headers;
        res.setEncoding('utf8');
        let buffer = '';
        let current: SseEvent = { id: null, event: null, data: '' };
        const stream = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
        res.on('data', (chunk: string) => {
          if (!stream) {
            client.body += chunk;
            return;
          }
          buffer += chunk;
          let at: number;
          while ((at = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, at);
            buffer = buffer.slice(at + 1);
            if (line === '') {
              if (current.data !== '' || current.id !== null) client.events.push(current);
              current = { id: null, event: null, data: '' };
            } else if (line.startsWith(':')) {
              client.comments.push(line.slice(1).trim());
            } else {
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'id') current.id = value;
              else if (field === 'event') current.event = value;
              else if (field === 'data') current.data += (current.data ? '\n' : '') + value;
            }
          }
        });
        res.on('end', () => (client.ended = true));
        res.on('close', () => (client.ended = true));
        if (options.readPaused) res.pause();
        resolve();
      });
      req.on('error', (err) => (client.status === 0 ? reject(err) : (client.ended = true)));
      client.request = req;
    });
    return client;
  }

  /** The events' parsed data, in order. */
  parsed<T = Record<string, unknown>>(): T[] {
    return this.events.map((e) => JSON.parse(e.data) as T);
  }

  /** Waits until `count` events matching `match` have come; returns them. */
  async waitForEvents<T = Record<string, unknown>>(
    match: (e: T) => boolean,
    count: number,
    what: string,
    timeoutMs = 30_000,
  ): Promise<T[]> {
    return waitFor(
      () => {
        const found = this.parsed<T>().filter(match);
        return found.length >= count ? found : null;
      },
      `${what} (got ${JSON.stringify(this.parsed().map((e) => e.type))})`,
      timeoutMs,
    );
  }

  /** Reads again after `readPaused`. */
  resume(): void {
    this.response?.resume();
  }

  close(): void {
    this.request?.destroy();
  }
}
