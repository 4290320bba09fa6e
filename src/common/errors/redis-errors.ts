import { AppError, ErrorCode } from './app-error.js';

/** Seconds a client should wait before retrying while the gateway's store is down. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * ioredis's ways of saying the server is not there: the connection is closed
 * or not up, the reconnect attempts allowed per command ran out, or the
 * command timed out. A reply error from a live server (ReplyError) is not one of them.
 */
export function isRedisUnavailable(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    // The api's client fails a command at once while disconnected (no offline queue).
    err.message.startsWith("Stream isn't writeable") ||
    err.message === 'Connection is closed.' ||
    err.message === 'Command timed out' ||
    /^(connect )?(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)\b/.test(err.message)
  );
}

/** Translates a Redis outage into UNAVAILABLE (503), or returns null for any other error. */
export function fromRedisError(err: unknown): AppError | null {
  if (!isRedisUnavailable(err)) return null;
  return new AppError(
    ErrorCode.UNAVAILABLE,
    `the gateway's store (Redis) is not answering: ${err.message}`,
    {
      cause: err,
      retryAfterSeconds: STORE_RETRY_AFTER_SECONDS,
    },
  );
}
