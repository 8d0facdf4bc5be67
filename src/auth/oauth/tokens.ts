import { createHash } from 'node:crypto';
import type { KeySource } from '../key-source.ts';
import type { Client } from './clients.ts';
import { OAuthError } from './errors.ts';
import { ACCESS_TOKEN_PREFIX, randomValue, REFRESH_TOKEN_PREFIX, sha256 } from './secrets.ts';
import type { Grant, GrantStore } from './store.ts';

/**
 * Grants, codes and tokens: what consent creates, what the token endpoint hands out, and what /mcp
 * checks. Opaque random tokens, looked up by hash (not JWTs), so revoking is one UPDATE and takes
 * effect at the next check.
 *
 * The check on /mcp is cached in memory for CACHE_TTL_MS: a revocation made on this replica clears the
 * grant's entries at once; one made on another replica is seen here within CACHE_TTL_MS. Whose key a
 * token acts as is looked up on every check (in memory), so a relay key removed from the configuration
 * stops its tokens at once.
 */

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  scope: string;
}

/** Who an access token speaks for, or why it speaks for no one. */
export type Verified = { label: string; keyId: string; grantId: string; clientId: string; scope: string } | { error: 'invalid' | 'expired' | 'key_removed' };

export interface Tokens {
  /** Consent given with the relay key `keyId`: a new grant and its one code. */
  authorize(input: { client: Client; keyId: string; scope: string; resource: string; redirectUri: string; codeChallenge: string }): Promise<string>;
  exchangeCode(client: Client, params: { code?: string; codeVerifier?: string; redirectUri?: string; resource?: string }): Promise<TokenResponse>;
  refresh(client: Client, params: { refreshToken?: string; scope?: string; resource?: string }): Promise<TokenResponse>;
  /** RFC 7009: revokes the token's whole grant when the token is this client's; silently nothing otherwise. */
  revoke(client: Client, token: string): Promise<void>;
  verify(accessToken: string): Promise<Verified>;
  purge(): Promise<void>;
}

export interface TokensOptions {
  store: GrantStore;
  keys: KeySource;
  /** The one resource (RFC 8707 audience) tokens are issued for: `<issuer>/mcp`. */
  resource: string;
  accessTtlMs: number;
  refreshTtlMs: number;
  now?: () => number;
  /** Grant lifecycle events, for the log (never a token). */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

export const CODE_TTL_MS = 60_000;
export const CACHE_TTL_MS = 30_000;
const MAX_CACHED = 10_000;
const UNUSED_CLIENT_MS = 24 * 60 * 60_000;
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

type CacheEntry = { checkedAt: number } & ({ grantId: string; keyId: string; clientId: string; scope: string; expiresAt: number } | { invalid: true });

const invalidGrant = (description: string) => new OAuthError('invalid_grant', description);

export function createTokens(opts: TokensOptions): Tokens {
  const { store, keys } = opts;
  const now = opts.now ?? Date.now;
  const event = opts.onEvent ?? (() => {});
  const cache = new Map<string, CacheEntry>();

  const forget = (grantId: string) => {
    for (const [hash, entry] of cache) if ('grantId' in entry && entry.grantId === grantId) cache.delete(hash);
  };
  const revokeGrant = async (grantId: string, reason: string) => {
    await store.revokeGrant(grantId, now());
    forget(grantId);
    event('oauth grant revoked', { grant: grantId, reason });
  };

  async function issue(grant: Grant): Promise<TokenResponse> {
    const access = randomValue(ACCESS_TOKEN_PREFIX);
    const refresh = randomValue(REFRESH_TOKEN_PREFIX);
    const at = now();
    await store.addTokens(grant.grantId, [
      { hash: sha256(access), kind: 'access', expiresAt: at + opts.accessTtlMs },
      { hash: sha256(refresh), kind: 'refresh', expiresAt: at + opts.refreshTtlMs },
    ]);
    return { access_token: access, token_type: 'Bearer', expires_in: Math.round(opts.accessTtlMs / 1000), refresh_token: refresh, scope: grant.scope };
  }

  /** The grant still belongs to this client, for this resource, and its relay key is still configured. */
  async function checkGrant(grant: Grant, client: Client, resource: string | undefined): Promise<void> {
    if (grant.clientId !== client.clientId) throw invalidGrant('This grant was issued to another client.');
    if (resource !== undefined && resource !== grant.resource) {
      throw new OAuthError('invalid_target', `This grant is for the resource ${grant.resource}; send that as resource (or leave it out).`);
    }
    if (!(await keys.byId(grant.keyId))) {
      await revokeGrant(grant.grantId, 'relay key removed');
      throw invalidGrant('The relay key this connection was authorized with is no longer configured: connect again with a current key.');
    }
  }

  async function lookup(hash: string): Promise<CacheEntry> {
    const record = await store.findToken(hash);
    const checkedAt = now();
    if (!record || record.kind !== 'access' || record.grant.revokedAt !== undefined || record.grant.resource !== opts.resource) return { checkedAt, invalid: true };
    const { grant } = record;
    return { checkedAt, grantId: grant.grantId, keyId: grant.keyId, clientId: grant.clientId, scope: grant.scope, expiresAt: record.expiresAt };
  }

  return {
    async authorize({ client, keyId, scope, resource, redirectUri, codeChallenge }) {
      const code = randomValue('rly_code_');
      const grant: Grant = { grantId: randomValue('grt_', 16), clientId: client.clientId, keyId, scope, resource, redirectUri, codeChallenge, createdAt: now() };
      await store.createGrant(grant, { hash: sha256(code), expiresAt: grant.createdAt + CODE_TTL_MS });
      event('oauth grant created', { grant: grant.grantId, client: client.clientId, registration: client.registration });
      return code;
    },

    async exchangeCode(client, { code, codeVerifier, redirectUri, resource }) {
      if (!code) throw new OAuthError('invalid_request', 'Send the authorization code as code.');
      const spent = await store.redeemCode(sha256(code), now());
      if (spent.kind === 'reused') {
        await revokeGrant(spent.grantId, 'authorization code reused');
        throw invalidGrant('This authorization code was already used, so the relay revoked every token issued for it. Start the authorization again.');
      }
      if (spent.kind === 'invalid') throw invalidGrant(`The authorization code is unknown or expired (codes live ${CODE_TTL_MS / 1000} s and work once). Start the authorization again.`);
      const { grant } = spent;
      await checkGrant(grant, client, resource);
      if (redirectUri !== grant.redirectUri) throw invalidGrant('redirect_uri must be the one sent with the authorization request.');
      if (!codeVerifier || !VERIFIER.test(codeVerifier)) throw invalidGrant('code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9 and -._~ (RFC 7636).');
      if (createHash('sha256').update(codeVerifier).digest('base64url') !== grant.codeChallenge) {
        throw invalidGrant('code_verifier does not match the code_challenge of the authorization request.');
      }
      return issue(grant);
    },

    async refresh(client, { refreshToken, scope, resource }) {
      if (!refreshToken?.startsWith(REFRESH_TOKEN_PREFIX)) throw invalidGrant('refresh_token is missing or is not a refresh token of this relay.');
      const spent = await store.spendRefreshToken(sha256(refreshToken), now());
      if (spent.kind === 'reused') {
        await revokeGrant(spent.grantId, 'refresh token reused');
        throw invalidGrant('This refresh token was already used (they rotate on every use), so the relay revoked this connection as a precaution. Connect again.');
      }
      if (spent.kind === 'invalid') throw invalidGrant('The refresh token is unknown, expired or revoked. Connect again.');
      const { grant } = spent;
      await checkGrant(grant, client, resource);
      if (scope !== undefined && scope.split(' ').some((s) => s && !grant.scope.split(' ').includes(s))) {
        throw new OAuthError('invalid_scope', `A refresh can keep or narrow the scope, not widen it (granted: ${grant.scope}).`);
      }
      return issue(grant);
    },

    async revoke(client, token) {
      const record = await store.findToken(sha256(token));
      if (record && record.grant.clientId === client.clientId && record.grant.revokedAt === undefined) await revokeGrant(record.grant.grantId, 'revoked by the client');
    },

    async verify(accessToken) {
      if (!accessToken.startsWith(ACCESS_TOKEN_PREFIX)) return { error: 'invalid' };
      const hash = sha256(accessToken);
      let entry = cache.get(hash);
      if (!entry || now() - entry.checkedAt >= CACHE_TTL_MS) {
        entry = await lookup(hash);
        cache.delete(hash);
        if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
        cache.set(hash, entry);
      }
      if ('invalid' in entry) return { error: 'invalid' };
      if (now() >= entry.expiresAt) return { error: 'expired' };
      const key = await keys.byId(entry.keyId);
      if (!key) return { error: 'key_removed' };
      return { label: key.label, keyId: entry.keyId, grantId: entry.grantId, clientId: entry.clientId, scope: entry.scope };
    },

    purge: () => store.purge(now(), { unusedClientMs: UNUSED_CLIENT_MS }),
  };
}
