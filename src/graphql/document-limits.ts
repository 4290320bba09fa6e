/**
 * Limits on a GraphQL document checked before it is parsed: its size in
 * bytes, its number of tokens, and how deeply its brackets nest ({ ( [ ),
 * which bounds the recursion of the parser and of every walk after it.
 * Counted with graphql-js's own lexer, in one pass that stops at the first
 * limit crossed: the work is linear in the part of the document read.
 */
import { GraphQLError, Lexer, Source, TokenKind } from 'graphql';
import { ErrorCode } from '../common/errors/app-error.js';

export interface DocumentLimits {
  /** GRAPHQL_MAX_DOCUMENT_BYTES: the query text's size in UTF-8. */
  maxBytes: number;
  /** GRAPHQL_MAX_TOKENS: punctuators, names, values (comments not counted). */
  maxTokens: number;
  /** How deeply brackets may nest: GRAPHQL_MAX_DEPTH plus room for arguments and introspection. */
  maxNesting: number;
}

/** A document refused before parsing: HTTP 413 PAYLOAD_TOO_LARGE, as a GraphQL error. */
export interface DocumentRefusal {
  status: number;
  error: GraphQLError;
}

const OPENING = new Set<TokenKind>([TokenKind.BRACE_L, TokenKind.PAREN_L, TokenKind.BRACKET_L]);
const CLOSING = new Set<TokenKind>([TokenKind.BRACE_R, TokenKind.PAREN_R, TokenKind.BRACKET_R]);

/**
 * The limit `query` exceeds, or null. A document that does not lex is left
 * to the parser, which reports the syntax error (in linear time).
 */
export function checkDocument(query: string, limits: DocumentLimits): DocumentRefusal | null {
  // A UTF-8 character is at most 3 bytes per UTF-16 unit: only long texts need counting.
  if (query.length * 3 > limits.maxBytes) {
    const bytes = Buffer.byteLength(query, 'utf8');
    if (bytes > limits.maxBytes) {
      return refusal(
        'documentBytes',
        limits.maxBytes,
        bytes,
        `the GraphQL document is ${bytes} bytes; the limit is ${limits.maxBytes} (GRAPHQL_MAX_DOCUMENT_BYTES)`,
      );
    }
  }
  const lexer = new Lexer(new Source(query));
  let tokens = 0;
  let nesting = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      tokens += 1;
      if (tokens > limits.maxTokens) {
        return refusal(
          'tokens',
          limits.maxTokens,
          tokens,
          `the GraphQL document has more than ${limits.maxTokens} tokens (GRAPHQL_MAX_TOKENS)`,
        );
      }
      if (OPENING.has(token.kind)) {
        nesting += 1;
        if (nesting > limits.maxNesting) {
          return refusal(
            'nesting',
            limits.maxNesting,
            nesting,
            `the GraphQL document nests brackets more than ${limits.maxNesting} deep (GRAPHQL_MAX_DEPTH and the arguments' nesting)`,
          );
        }
      } else if (CLOSING.has(token.kind)) {
        nesting -= 1;
      }
    }
  } catch (err) {
    if (err instanceof GraphQLError) return null; // a syntax error: the parser reports it
    throw err;
  }
  return null;
}

function refusal(name: string, maximum: number, actual: number, message: string): DocumentRefusal {
  return {
    status: 413,
    error: new GraphQLError(message, {
      extensions: { code: ErrorCode.PAYLOAD_TOO_LARGE, limit: { name, maximum, actual } },
    }),
  };
}
