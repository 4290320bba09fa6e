/**
 * Relay-style connections over the gateway's cursor pagination
 * (common/pagination.ts): `first`/`after` in, `edges { cursor node }` and
 * `pageInfo { hasNextPage endCursor }` out. An edge's cursor is the same
 * opaque cursor REST returns as `nextCursor`, so either can be passed back.
 */
import type { Type } from '@nestjs/common';
import { ArgsType, Field, Int, ObjectType, type ComplexityEstimatorArgs } from '@nestjs/graphql';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { AppError } from '../common/errors/app-error.js';
import { DEFAULT_PAGE_SIZE, encodeCursor, MAX_PAGE_SIZE, type Page } from '../common/pagination.js';

@ObjectType('PageInfo')
export class PageInfoModel {
  @Field({ description: 'True when `after: endCursor` gives more items' })
  hasNextPage!: boolean;

  @Field(() => String, {
    nullable: true,
    description: 'The cursor of the last edge; null when the page is empty',
  })
  endCursor!: string | null;
}

@ArgsType()
export class ConnectionArgs {
  @Field(() => Int, {
    nullable: true,
    description: `Page size, 1-${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  first?: number;

  @Field(() => String, {
    nullable: true,
    description: 'An edge cursor (or pageInfo.endCursor) of the previous page',
  })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  after?: string;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface Connection<T> {
  edges: Edge<T>[];
  pageInfo: PageInfoModel;
  scopeFiltered: boolean;
  totalCount?: number;
}

/**
 * Declares `<Name>Edge` and `<Name>Connection` for `node`. With
 * `totalCount`, the connection also says how many items match over all pages.
 */
export function connectionTypes<T>(
  node: Type<T>,
  name: string,
  options: { totalCount?: boolean } = {},
): Type<Connection<T>> {
  @ObjectType(`${name}Edge`)
  class EdgeType {
    @Field({ description: 'Pass as `after` to continue after this item' })
    cursor!: string;

    @Field(() => node)
    node!: T;
  }

  @ObjectType({ isAbstract: true })
  abstract class BaseConnection {
    @Field(() => [EdgeType])
    edges!: EdgeType[];

    @Field(() => PageInfoModel)
    pageInfo!: PageInfoModel;

    @Field({
      description: "True when the list holds only what the token's scope covers",
    })
    scopeFiltered!: boolean;
  }

  if (options.totalCount) {
    @ObjectType(`${name}Connection`)
    class CountedConnection extends BaseConnection {
      @Field(() => Int, { description: 'How many items match, over all pages' })
      totalCount!: number;
    }
    return CountedConnection;
  }

  @ObjectType(`${name}Connection`)
  class PlainConnection extends BaseConnection {}
  return PlainConnection;
}

/** A page of the services' pagination as a connection; `keyOf` is the page's sort key. */
export function toConnection<T, N = T>(
  page: Page<T> & { totalCount?: number },
  keyOf: (item: T) => string,
  nodeOf: (item: T) => N = (item) => item as unknown as N,
): Connection<N> {
  const edges = page.items.map((item) => ({
    cursor: encodeCursor(keyOf(item)),
    node: nodeOf(item),
  }));
  return {
    edges,
    pageInfo: { hasNextPage: page.nextCursor !== null, endCursor: edges.at(-1)?.cursor ?? null },
    scopeFiltered: page.scopeFiltered ?? false,
    ...(page.totalCount === undefined ? {} : { totalCount: page.totalCount }),
  };
}

/**
 * Runs a paginated service call with the connection's arguments. The
 * services name a bad cursor `cursor` (REST's parameter); here it is `after`.
 */
export async function withConnectionArgs<R>(
  args: ConnectionArgs,
  fn: (limit: number, cursor: string | undefined) => Promise<R>,
): Promise<R> {
  try {
    return await fn(args.first ?? DEFAULT_PAGE_SIZE, args.after ?? undefined);
  } catch (err) {
    if (err instanceof AppError && err.fields.some((f) => f.field === 'cursor')) {
      const message =
        "after is not valid: pass back an edge's cursor or pageInfo.endCursor unchanged";
      throw new AppError(err.code, message, {
        cause: err,
        fields: [{ field: 'after', message: 'after is not a cursor this API returned' }],
      });
    }
    throw err;
  }
}

/**
 * The estimated cost of a connection field: each of the `first` items costs
 * what its selection costs (see query-limits.ts).
 */
export function connectionComplexity({ args, childComplexity }: ComplexityEstimatorArgs): number {
  const first = typeof args.first === 'number' ? args.first : DEFAULT_PAGE_SIZE;
  return 1 + first * childComplexity;
}

/**
 * The estimated cost of a list field that is not paginated but costs libvirt
 * calls per item (snapshots, volumes): its selection, `items` times.
 */
export function listComplexity(items: number): (args: ComplexityEstimatorArgs) => number {
  return ({ childComplexity }) => 1 + items * childComplexity;
}
