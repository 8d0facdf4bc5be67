import { attemptLimiter } from './attempt-limiter.ts';
import { createClientDocuments, isClientDocumentId, type ClientDocumentOptions } from './client-documents.ts';
import { checkClientMetadata, type ClientMetadata } from './client-metadata.ts';
import { OAuthError } from './errors.ts';
import type { RedirectRule } from './redirect-uris.ts';
import { randomValue, sameSecret, sha256 } from './secrets.ts';
import type { GrantStore } from './store.ts';

/**
 * The OAuth clients: registered ones (RFC 7591 dynamic registration, kept in the grant store) and
 * Client ID Metadata Documents (an https client_id, fetched). Both end as the same checked metadata.
 */

export interface Client {
  clientId: string;
  metadata: ClientMetadata;
  /** Hash of the client secret, for clients registered with client_secret_post/basic. */
  secretHash?: string;
  registration: 'dynamic' | 'document';
}

/** What the token and revocation endpoints were given to prove a client's identity. */
export interface ClientCredentials {
  clientId?: string;
  secret?: string;
  method: 'none' | 'client_secret_post' | 'client_secret_basic';
}

export interface Clients {
  /** RFC 7591: checks the request, stores the client, answers the registration response. */
  register(body: unknown, source: string): Promise<Record<string, unknown>>;
  /** The client a client_id names; OAuthError invalid_client when there is none. */
  find(clientId: string): Promise<Client>;
  /** The client the credentials prove (RFC 6749 §2.3); OAuthError invalid_client (401) otherwise. */
  authenticate(credentials: ClientCredentials): Promise<Client>;
}

export interface ClientsOptions {
  store: GrantStore;
  redirectRules: readonly RedirectRule[];
  documents?: Pick<ClientDocumentOptions, 'resolve' | 'now'>;
  now?: () => number;
}

/**
 * Registrations are open to anyone, and each stored one is a row: at most this many a minute from one
 * source (ChatGPT registers from a few addresses for all its users; behind a proxy every client shares
 * one) and in all. Refused requests are not counted: they store nothing.
 */
const REGISTRATIONS = { perSource: 30, total: 100, windowMs: 60_000 };

export function createClients(opts: ClientsOptions): Clients {
  const now = opts.now ?? Date.now;
  const documents = createClientDocuments({ redirectRules: opts.redirectRules, ...opts.documents });
  const registrations = attemptLimiter({ ...REGISTRATIONS, now });

  async function find(clientId: string): Promise<Client> {
    if (typeof clientId !== 'string' || clientId === '' || clientId.length > 2048) {
      throw new OAuthError('invalid_client', 'client_id is missing or too long.', 401);
    }
    if (isClientDocumentId(clientId)) return { clientId, metadata: await documents.get(clientId), registration: 'document' };
    const stored = await opts.store.findClient(clientId);
    if (!stored) {
      throw new OAuthError('invalid_client', 'This client_id is not registered with this relay (registrations unused for a day are removed): register again.', 401);
    }
    return { clientId, metadata: stored.metadata, secretHash: stored.secretHash, registration: 'dynamic' };
  }

  return {
    async register(body, source) {
      if (registrations.blocked(source)) {
        throw new OAuthError('temporarily_unavailable', 'Too many client registrations in the last minute; try again in a minute.', 429, { 'retry-after': '60' });
      }
      const metadata = checkClientMetadata(body, opts.redirectRules, 'registration');
      registrations.hit(source);
      const clientId = randomValue('rcl_', 16);
      const secret = metadata.token_endpoint_auth_method === 'none' ? undefined : randomValue('rcs_');
      const createdAt = now();
      await opts.store.saveClient({ clientId, secretHash: secret && sha256(secret), metadata, createdAt });
      return {
        client_id: clientId,
        client_id_issued_at: Math.floor(createdAt / 1000),
        ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
        ...Object.fromEntries(Object.entries(metadata).filter(([, v]) => v !== undefined)),
      };
    },

    find,

    async authenticate(credentials) {
      const unauthorized = (why: string) =>
        new OAuthError('invalid_client', why, 401, credentials.method === 'client_secret_basic' ? { 'www-authenticate': 'Basic realm="openai-relay"' } : {});
      if (!credentials.clientId) throw unauthorized('Name the client: send client_id (or HTTP Basic authentication for a confidential client).');
      let client: Client;
      try {
        client = await find(credentials.clientId);
      } catch (err) {
        if (err instanceof OAuthError && err.error === 'invalid_client') throw unauthorized(err.message);
        throw err;
      }
      const registered = client.metadata.token_endpoint_auth_method;
      if (registered === 'none') {
        if (credentials.secret !== undefined) throw unauthorized('This client is registered without a secret (token_endpoint_auth_method "none"): send no client_secret.');
        return client;
      }
      if (credentials.secret === undefined || !client.secretHash) throw unauthorized(`This client must authenticate with its client_secret (${registered}).`);
      if (!sameSecret(sha256(credentials.secret), client.secretHash)) throw unauthorized('The client_secret is not correct for this client_id.');
      return client;
    },
  };
}
