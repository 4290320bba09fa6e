/**
 * What parts of the gateway outside the auth feature (the docs, served
 * before Nest's guards run) need of the token store: whether a presented
 * API token is a valid one. The auth feature provides it.
 */
export interface TokenVerifier {
  isValid(token: string): Promise<boolean>;
}

/** Injection token of the TokenVerifier. */
export const TOKEN_VERIFIER = Symbol('TOKEN_VERIFIER');
