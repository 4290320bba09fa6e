import { AppError, ErrorCode } from './app-error.js';

/** Seconds a client should wait before retrying while the gateway's store is down. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * ioredis's ways of saying the server is not there: the connection is closed
 * or not up, the reconnect attempts allowed per command ran out, or the
 * command timed out; a Cluster or Sentinel in transition. Other reply errors
 * from a live server (ReplyError) are not one of them.
 */
export function isRedisUnavailable(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    // The api's client fails a command at once while disconnected (no offline queue).
    err.message.startsWith("Stream isn't writeable") ||
    err.message === 'Connection is closed.' ||
    err.message === 'Command timed out' ||
    /^(connect )?(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)\b/.test(err.message) ||
    // A Cluster or Sentinel between two states: a master restarting or failing over, a
    // server still loading its AOF, a write reaching a replica before the switch is seen.
    err.name === 'ClusterAllFailedError' ||
    /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY|NOREPLICAS) /.test(err.message) ||
    err.message.startsWith('None of startup nodes is available') ||
    err.message.startsWith('Too many Cluster redirections') ||
    err.message.startsWith('All sentinels are unreachable')
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
