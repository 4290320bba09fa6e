/**
 * GraphQL subscriptions over WebSocket (the graphql-ws protocol,
 * subprotocol `graphql-transport-ws`) at /graphql, as Mercurius serves them,
 * with everything an HTTP request to /graphql meets applied to them too.
 * Mercurius does not check the documents it gets over a socket (it neither
 * validates them nor bounds their parsing), nor who sends them; this gate
 * stands between the socket and Mercurius and hands Mercurius only what it
 * has admitted.
 *
 * - The upgrade (an HTTP GET) meets the rate limits like any request; its
 *   `Origin`, when a browser sends one, must be the gateway's own or one of
 *   CORS_ORIGINS (`*`: any): HTTP 403 otherwise; it must offer the
 *   subprotocol graphql-transport-ws: HTTP 400 otherwise. The bearer token
 *   cannot ride on a browser's upgrade, so it is not asked for there.
 * - `connection_init` must come within HTTP_HEADERS_TIMEOUT_MS (else close
 *   4408) and carry `{ "Authorization": "Bearer <token>" }` (or
 *   `authorization`; without either, the upgrade's own Authorization header
 *   counts): authenticated by the same authenticator as HTTP. Without valid
 *   credentials the socket is closed with 4401 and the reason
 *   (`UNAUTHENTICATED: …`), the failure counts towards
 *   AUTH_FAILURES_PER_ADDRESS and is audited (`auth.denied`). Only then
 *   does Mercurius see the (emptied) connection_init and acknowledge it.
 * - Each `subscribe` counts as a request against the rate limits, finds
 *   the token still valid (a revoked token closes the socket, 4401), and
 *   its document goes through the same checks as over HTTP, in the same
 *   order: size, tokens and nesting before parsing; depth, cost, aliases,
 *   directives and repeats before validation; validation (introspection
 *   off unless enabled); the exact limits with the variables coerced. It
 *   must be a subscription. A refusal is an `error` message for that id,
 *   with the codes of the rest of the API; the socket stays open.
 * - At most MAX_OPERATIONS subscriptions per socket; an id in use is 4409.
 * - Every subscription's iterator is tracked: when the client completes it
 *   or the socket closes, it is returned at once, so what it holds (a feed
 *   subscription) goes with it, whatever Mercurius does.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  getOperationAST,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
} from 'graphql';
import type { AuditLog } from '../common/audit/audit-log.js';
import { bearerToken, type RequestAuthenticator } from '../common/auth/authenticator.js';
import type { Caller } from '../common/auth/caller.js';
import { AppError, ErrorCode } from '../common/errors/app-error.js';
import { messageLimitsOf } from '../common/limits/rate-limit.js';
import { shouldLogRejection } from '../common/logging/rejection-log.js';
import { checkDocument, type DocumentLimits } from './document-limits.js';
import { RequestLoaders, type GraphqlContext } from './graphql-context.js';
import { formatGraphqlError } from './graphql-errors.js';
import { checkDocumentLimits, checkQueryLimits, type QueryLimits } from './query-limits.js';

/** The WebSocket subprotocol of the graphql-ws protocol (the only one served). */
export const GRAPHQL_WS_PROTOCOL = 'graphql-transport-ws';

/** The graphql-ws protocol's close codes, as the gateway uses them. */
export const WS_CLOSE = {
  InternalError: 4500,
  BadRequest: 4400,
  Unauthorized: 4401,
  SubprotocolNotAcceptable: 4406,
  ConnectionInitialisationTimeout: 4408,
  SubscriberAlreadyExists: 4409,
  TooManyInitialisationRequests: 4429,
} as const;

/** Most subscriptions one socket may hold at once. */
export const MAX_OPERATIONS = 100;

/** The part of a `ws` WebSocket the gate uses. */
interface WsSocket {
  readonly protocol: string;
  readonly readyState: number;
  emit(event: string | symbol, ...args: unknown[]): boolean;
  send(data: unknown, ...rest: unknown[]): void;
  close(code?: number, reason?: string): void;
  once(event: 'close', listener: () => void): unknown;
}

/** The part of `ws`'s server the gate uses. */
interface WsServer {
  on(event: 'connection', listener: (socket: WsSocket, request: IncomingMessage) => void): unknown;
}

export interface SubscriptionGateOptions {
  /** The authenticator, resolved when the first socket authenticates. */
  authenticator: () => RequestAuthenticator;
  /** The audit trail (absent: denials are not recorded). */
  audit: () => AuditLog | undefined;
  limits: QueryLimits;
  document: DocumentLimits;
  /** CORS_ORIGINS: the origins a browser may open a socket from (besides the gateway's own). */
  corsOrigins: readonly string[];
  /** How long a socket has to send connection_init. */
  initTimeoutMs: number;
}

/** The context of an operation over a socket (Mercurius adds the operation's `id`). */
export interface SubscriptionContext extends Omit<GraphqlContext, 'reply'> {
  reply: { request: FastifyRequest };
  session: Session;
  /** The graphql-ws id of the operation (set by Mercurius per operation). */
  id?: string;
}

type AuthenticatedRequest = FastifyRequest & { user?: Caller };

/**
 * The gate of every socket at /graphql: from the HTTP hooks of the upgrade
 * (`refuseUpgrade`, `admitUpgrade`) to each socket's Session, and the
 * context Mercurius gives the operations of a socket (`context`).
 */
export class SubscriptionGate {
  private readonly upgrades = new WeakMap<IncomingMessage, FastifyRequest>();
  private readonly sessions = new WeakMap<WsSocket, Session>();
  private readonly servers = new WeakSet<object>();
  private authenticatorInstance: RequestAuthenticator | undefined;
  private readonly rules: typeof specifiedRules;

  constructor(private readonly options: SubscriptionGateOptions) {
    this.rules = options.limits.introspection
      ? specifiedRules
      : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  }

  /**
   * Why an upgrade is refused before it happens, or null: its Origin
   * (FORBIDDEN), or no graphql-transport-ws among the subprotocols it
   * offers (INVALID_ARGUMENT). When the client offers several, that one is
   * the one chosen.
   */
  refuseUpgrade(request: FastifyRequest): AppError | null {
    const origin = request.headers.origin;
    if (!originAllowed(origin, request.headers.host, this.options.corsOrigins)) {
      return new AppError(
        ErrorCode.FORBIDDEN,
        `a WebSocket from origin ${JSON.stringify(origin)?.slice(0, 200)} is not allowed: only the gateway's own origin and CORS_ORIGINS may open one`,
      );
    }
    const offered = (request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (!offered.includes(GRAPHQL_WS_PROTOCOL)) {
      return new AppError(
        ErrorCode.INVALID_ARGUMENT,
        `GraphQL subscriptions speak the graphql-ws protocol: offer the WebSocket subprotocol ${GRAPHQL_WS_PROTOCOL}`,
      );
    }
    // The server picks among the offered: ws takes the first, so leave only ours.
    request.raw.headers['sec-websocket-protocol'] = GRAPHQL_WS_PROTOCOL;
    return null;
  }

  /** Notes an upgrade about to happen, so that its socket gets a Session when it opens. */
  admitUpgrade(request: FastifyRequest): void {
    const server = (request.server as unknown as { websocketServer?: WsServer }).websocketServer;
    if (server && !this.servers.has(server)) {
      this.servers.add(server);
      server.on('connection', (socket, raw) => this.open(socket, raw));
    }
    this.upgrades.set(request.raw, request);
  }

  /** Mercurius's subscription context: called once a socket's connection_init is admitted. */
  context(socket: unknown, request: FastifyRequest): SubscriptionContext {
    const session = this.sessions.get(socket as WsSocket);
    if (!session) throw new Error('a socket without a session reached Mercurius');
    return { req: request, reply: { request }, loaders: new RequestLoaders(), session };
  }

  get authenticator(): RequestAuthenticator {
    this.authenticatorInstance ??= this.options.authenticator();
    return this.authenticatorInstance;
  }

  get audit(): AuditLog | undefined {
    return this.options.audit();
  }

  get initTimeoutMs(): number {
    return this.options.initTimeoutMs;
  }

  /**
   * The errors of a subscribe message's operation, before Mercurius parses
   * it: the same checks as over HTTP, in the same order. Null: admitted.
   */
  checkOperation(
    schema: GraphQLSchema,
    query: string,
    variables: Record<string, unknown> | null,
    operationName: string | null,
  ): readonly GraphQLError[] | null {
    const refusal = checkDocument(query, this.options.document);
    if (refusal) return [refusal.error];
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: this.options.document.maxTokens });
    } catch (err) {
      return [err instanceof GraphQLError ? err : new GraphQLError(String(err))];
    }
    const early = checkDocumentLimits(schema, document, variables, this.options.limits);
    if (early) return [early];
    const errors = validate(schema, document, this.rules);
    if (errors.length > 0) return errors;
    const operation = getOperationAST(document, operationName ?? undefined);
    if (!operation) {
      return [
        new GraphQLError(
          operationName === null
            ? 'the document holds several operations: name the one to run (operationName)'
            : `the document has no operation named ${JSON.stringify(operationName)}`,
        ),
      ];
    }
    if (operation.operation !== 'subscription') {
      return [
        new GraphQLError(
          `only subscriptions go over the WebSocket; send a ${operation.operation} as an HTTP POST to /graphql`,
        ),
      ];
    }
    const exact = checkQueryLimits(
      { schema, document, operationName, variables },
      this.options.limits,
    );
    return exact ? [exact] : null;
  }

  private open(socket: WsSocket, raw: IncomingMessage): void {
    const request = this.upgrades.get(raw);
    this.upgrades.delete(raw);
    if (!request) {
      // Every upgrade at /graphql passes the route's hooks: this one did not.
      socket.close(WS_CLOSE.InternalError, 'Internal error');
      return;
    }
    this.sessions.set(socket, new Session(socket, request, this));
  }
}

/** One operation of a socket: its iterator once the subscription runs. */
interface Operation {
  iterator: AsyncIterator<unknown> | null;
}

/**
 * One socket: it sees each message before Mercurius does (the socket's
 * `message` events go through it) and forwards only what it admits, in
 * order; it watches what goes out to know when an operation ended.
 */
export class Session {
  private state: 'init' | 'authenticating' | 'ready' | 'closed' = 'init';
  private readonly operations = new Map<string, Operation>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** The Authorization value the socket authenticated with. */
  private authorization: string | undefined;
  private readonly deliver: (text: string) => void;
  private readonly rawSend: (text: string) => void;

  constructor(
    private readonly socket: WsSocket,
    private readonly request: AuthenticatedRequest,
    private readonly gate: SubscriptionGate,
  ) {
    const emit = socket.emit.bind(socket);
    const send = socket.send.bind(socket);
    this.deliver = (text) => void emit('message', Buffer.from(text), false);
    this.rawSend = (text) => send(text);
    socket.emit = (event: string | symbol, ...args: unknown[]): boolean => {
      if (event !== 'message') return emit(event, ...args);
      this.receive(args[0]);
      return true;
    };
    socket.send = (data: unknown, ...rest: unknown[]): void => {
      if (typeof data === 'string') this.sent(data);
      send(data, ...rest);
    };
    socket.once('close', () => this.end());
    if (socket.protocol !== GRAPHQL_WS_PROTOCOL) {
      this.close(WS_CLOSE.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    this.timer = setTimeout(
      () =>
        this.close(WS_CLOSE.ConnectionInitialisationTimeout, 'Connection initialisation timeout'),
      gate.initTimeoutMs,
    );
    this.timer.unref();
  }

  /**
   * Hands the iterator of operation `id` to the session, which returns it
   * when the client completes the operation or the socket closes; the
   * iterator to give Mercurius. An operation already gone gets its iterator
   * returned at once (it then yields nothing).
   */
  track<T>(id: string | undefined, iterator: AsyncIterator<T>): AsyncIterator<T> {
    const op = id === undefined ? undefined : this.operations.get(id);
    if (!op || op.iterator !== null || this.state === 'closed') {
      void iterator.return?.();
      return iterator;
    }
    op.iterator = iterator;
    const untrack = (): void => {
      if (id !== undefined && this.operations.get(id) === op) this.operations.delete(id);
    };
    return {
      next: async () => {
        try {
          const step = await iterator.next();
          if (step.done === true) untrack();
          return step;
        } catch (err) {
          untrack();
          throw err;
        }
      },
      return: async () => {
        untrack();
        return (await iterator.return?.()) ?? { value: undefined, done: true };
      },
    };
  }

  private receive(data: unknown): void {
    this.chain = this.chain
      .then(() => this.handle(data))
      .catch((err: unknown) => {
        this.request.log.error({ err }, 'a GraphQL WebSocket message failed');
        this.close(WS_CLOSE.InternalError, 'Internal error');
      });
  }

  private async handle(data: unknown): Promise<void> {
    if (this.state === 'closed') return;
    let message: unknown;
    try {
      message = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : String(data));
    } catch {
      return this.close(WS_CLOSE.BadRequest, 'Invalid message received: not JSON');
    }
    if (!isRecord(message) || typeof message.type !== 'string') {
      return this.close(WS_CLOSE.BadRequest, 'Invalid message received: no type');
    }
    switch (message.type) {
      case 'connection_init':
        return this.init(message.payload);
      case 'subscribe':
        return this.subscribe(message);
      case 'complete':
        return this.complete(message);
      case 'ping':
      case 'pong':
        return this.forward({ type: message.type });
      default:
        return this.close(
          WS_CLOSE.BadRequest,
          `Invalid message received: type ${JSON.stringify(message.type).slice(0, 40)}`,
        );
    }
  }

  private async init(payload: unknown): Promise<void> {
    if (this.state !== 'init') {
      return this.close(WS_CLOSE.TooManyInitialisationRequests, 'Too many initialisation requests');
    }
    clearTimeout(this.timer);
    this.state = 'authenticating';
    const given = isRecord(payload) ? (payload.Authorization ?? payload.authorization) : undefined;
    const authorization = typeof given === 'string' ? given : this.request.headers.authorization;
    let caller: Caller;
    try {
      caller = await this.authenticate(authorization);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      await this.denied(err, authorization);
      return;
    }
    if (this.state !== 'authenticating') return; // closed meanwhile
    this.authorization = authorization;
    this.request.user = caller;
    this.state = 'ready';
    // Mercurius needs nothing of the payload (it would copy its keys into the request's headers).
    this.forward({ type: 'connection_init' });
  }

  private async subscribe(message: Record<string, unknown>): Promise<void> {
    if (this.state !== 'ready') return this.close(WS_CLOSE.Unauthorized, 'Unauthorized');
    const { id, payload } = message;
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
      return this.close(WS_CLOSE.BadRequest, 'Invalid message received: bad id');
    }
    if (this.operations.has(id)) {
      return this.close(
        WS_CLOSE.SubscriberAlreadyExists,
        `Subscriber for ${id.slice(0, 64)} already exists`,
      );
    }
    if (
      !isRecord(payload) ||
      typeof payload.query !== 'string' ||
      !(payload.variables == null || isRecord(payload.variables)) ||
      !(payload.operationName == null || typeof payload.operationName === 'string')
    ) {
      return this.close(
        WS_CLOSE.BadRequest,
        'Invalid message received: payload needs query (a string), variables and operationName',
      );
    }
    if (this.operations.size >= MAX_OPERATIONS) {
      return this.refuse(
        id,
        new AppError(
          ErrorCode.QUOTA_EXCEEDED,
          `this socket runs ${MAX_OPERATIONS} subscriptions already: complete one first`,
        ),
      );
    }
    const limits = messageLimitsOf(this.request.server);
    const limited = await limits?.admit(this.request.ip, bearerToken(this.authorization));
    if (limited) return this.refuse(id, limited);
    // The token may have been revoked (or a JWT expired) since the socket opened.
    try {
      this.request.user = await this.authenticate(this.authorization);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return this.close(WS_CLOSE.Unauthorized, `${err.code}: ${err.message}`);
    }
    if (this.state !== 'ready') return;
    const variables = (payload.variables ?? null) as Record<string, unknown> | null;
    const operationName = (payload.operationName ?? null) as string | null;
    const schema = (this.request.server as unknown as { graphql: { schema: GraphQLSchema } })
      .graphql.schema;
    const errors = this.gate.checkOperation(schema, payload.query, variables, operationName);
    if (errors) return this.refuse(id, ...errors);
    this.operations.set(id, { iterator: null });
    this.forward({
      id,
      type: 'subscribe',
      payload: { query: payload.query, variables, operationName },
    });
  }

  private complete(message: Record<string, unknown>): void {
    const { id } = message;
    if (typeof id !== 'string') {
      return this.close(WS_CLOSE.BadRequest, 'Invalid message received: bad id');
    }
    const op = this.operations.get(id);
    if (op) {
      this.operations.delete(id);
      void op.iterator?.return?.();
    }
    this.forward({ id, type: 'complete' });
  }

  /** Authenticates an Authorization value as the HTTP guard would the header. */
  private authenticate(authorization: string | undefined): Promise<Caller> {
    // A view of the upgrade's request with this Authorization and no Caller yet: the
    // request itself keeps its Caller while other operations run.
    const view = Object.create(this.request, {
      headers: { value: { ...this.request.headers, authorization } },
      user: { value: undefined, writable: true },
    }) as FastifyRequest;
    return this.gate.authenticator.authenticate(view);
  }

  private async denied(err: AppError, authorization: string | undefined): Promise<void> {
    this.close(WS_CLOSE.Unauthorized, `${err.code}: ${err.message}`);
    const request = this.request;
    if (shouldLogRejection(request, 'unauthenticated')) {
      request.log.info({ code: err.code }, 'refused a GraphQL WebSocket: ' + err.message);
    }
    await messageLimitsOf(request.server)?.failedAuthentication(request.ip);
    await this.gate.audit?.record({
      actor: null,
      action: 'auth.denied',
      target: 'WebSocket /graphql',
      host: null,
      requestId: request.id,
      address: request.ip,
      result: 'denied',
      code: err.code,
      detail: { credentials: authorization ? 'invalid' : 'none' },
    });
  }

  /** Answers operation `id` with errors, formatted as every GraphQL error of the API. */
  private refuse(id: string, ...errors: Array<GraphQLError | AppError>): void {
    const payload = errors.map(
      (e) =>
        formatGraphqlError(
          e instanceof GraphQLError ? e : new GraphQLError(e.message, { originalError: e }),
          this.request,
        ).error,
    );
    this.rawSend(JSON.stringify({ id, type: 'error', payload }));
  }

  private forward(message: Record<string, unknown>): void {
    if (this.state === 'closed') return;
    this.deliver(JSON.stringify(message));
  }

  /** Notes what Mercurius sends: an operation ended with `complete` or `error`. */
  private sent(text: string): void {
    if (!text.startsWith('{"type":"complete"') && !text.startsWith('{"type":"error"')) return;
    try {
      const { id } = JSON.parse(text) as { id?: unknown };
      if (typeof id === 'string') this.operations.delete(id);
    } catch {
      // not ours to judge
    }
  }

  private close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.end();
    this.socket.close(code, truncateUtf8(reason, 123));
  }

  /** The socket is gone (or going): every operation's iterator is returned. */
  private end(): void {
    this.state = 'closed';
    clearTimeout(this.timer);
    const operations = [...this.operations.values()];
    this.operations.clear();
    for (const op of operations) void op.iterator?.return?.();
  }
}

/**
 * Whether a socket may be opened from `origin`: no Origin (not a browser),
 * the gateway's own (the Host the browser connected to), or one of
 * CORS_ORIGINS (`*`: any).
 */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  corsOrigins: readonly string[],
): boolean {
  if (origin === undefined) return true;
  if (corsOrigins.includes('*') || corsOrigins.includes(origin)) return true;
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host === host;
  } catch {
    return false; // `null` (a sandboxed page, a file) or garbage
  }
}

/**
 * Wraps each subscription field of `schema` (in place) so that its errors,
 * at subscribe and from its iterator, carry the API's codes (Mercurius
 * sends them unformatted), its iterator is tracked by the socket's
 * Session, and each event is resolved with loaders of its own (as each
 * HTTP request is: nothing cached for one event is served for the next).
 * For the schema's transformSchema.
 */
export function guardSubscriptionFields(schema: GraphQLSchema): GraphQLSchema {
  const type = schema.getSubscriptionType();
  if (!type) return schema;
  for (const field of Object.values(type.getFields())) {
    const subscribe = field.subscribe;
    if (!subscribe) continue;
    const resolve = field.resolve;
    if (resolve) {
      field.resolve = (source, args, context, info) => {
        (context as Partial<SubscriptionContext>).loaders = new RequestLoaders();
        return resolve(source, args, context, info);
      };
    }
    field.subscribe = async (source, args, context, info) => {
      const ctx = context as Partial<SubscriptionContext>;
      const request = ctx.req;
      let result: unknown;
      try {
        result = await subscribe(source, args, context, info);
      } catch (err) {
        throw formatted(err, request);
      }
      if (!isAsyncIterable(result)) return result;
      const source_ = result[Symbol.asyncIterator]();
      const iterator: AsyncIterator<unknown> = {
        next: () =>
          source_.next().catch((err: unknown) => {
            throw formatted(err, request);
          }),
        return: async () => (await source_.return?.()) ?? { value: undefined, done: true as const },
      };
      const tracked = ctx.session ? ctx.session.track(ctx.id, iterator) : iterator;
      return {
        next: () => tracked.next(),
        return: () => tracked.return?.() ?? Promise.resolve({ value: undefined, done: true }),
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    };
  }
  return schema;
}

/** A GraphQL error carrying the API's extensions (code, requestId…). */
function formatted(err: unknown, request: FastifyRequest | undefined): GraphQLError {
  const error =
    err instanceof GraphQLError
      ? err
      : new GraphQLError(err instanceof Error ? err.message : String(err), {
          originalError: err instanceof Error ? err : new Error(String(err)),
        });
  const out = formatGraphqlError(error, request).error;
  return new GraphQLError(out.message, { extensions: { ...out.extensions } });
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<symbol, unknown>)[Symbol.asyncIterator] === 'function'
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** At most `bytes` bytes of `text` in UTF-8, cut with an ellipsis (a close reason may hold 123). */
function truncateUtf8(text: string, bytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= bytes) return text;
  let out = text;
  while (out.length > 0 && Buffer.byteLength(`${out}…`, 'utf8') > bytes) out = out.slice(0, -1);
  return `${out}…`;
}
