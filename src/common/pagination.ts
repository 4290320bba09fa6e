import { AppError, ErrorCode } from './errors/app-error.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;

export interface Page<T> {
  items: T[];
  /** Opaque; pass it back as `cursor` for the next page. Null on the last page. */
  nextCursor: string | null;
  /**
   * True when the list holds only what the caller's token scope covers
   * (src/common/auth/scope.ts); absent or false: the whole list.
   */
  scopeFiltered?: boolean;
}

/** A page of a list filtered to the caller's scope: it says whether it was. */
export type Scoped<P> = P & { scopeFiltered: boolean };

/**
 * Cursor pagination over a list sorted by a unique string key: the cursor
 * names the last key of the previous page, so a page never repeats or skips
 * an item that existed across both requests, whatever was added or removed
 * elsewhere in the list meanwhile.
 */
export function paginate<T>(
  sorted: readonly T[],
  keyOf: (item: T) => string,
  limit: number,
  cursor: string | undefined,
): Page<T> {
  let start = 0;
  if (cursor !== undefined) {
    const after = decodeCursor(cursor);
    start = firstIndexAfter(sorted, keyOf, after);
  }
  const items = sorted.slice(start, start + limit);
  const more = start + limit < sorted.length;
  return {
    items,
    nextCursor: more && items.length > 0 ? encodeCursor(keyOf(items.at(-1)!)) : null,
  };
}

/** Compares keys the way the list is sorted: by code unit, like Array.prototype.sort. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function firstIndexAfter<T>(
  sorted: readonly T[],
  keyOf: (item: T) => string,
  after: string,
): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keyOf(sorted[mid]!), after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ after: key }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const invalid = (): AppError =>
    new AppError(
      ErrorCode.INVALID_ARGUMENT,
      'cursor is not valid: pass back a nextCursor unchanged',
      {
        fields: [{ field: 'cursor', message: 'cursor is not a cursor this API returned' }],
      },
    );
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw invalid();
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as { after?: unknown }).after === 'string'
    ) {
      return (parsed as { after: string }).after;
    }
  } catch {
    // fall through
  }
  throw invalid();
}
