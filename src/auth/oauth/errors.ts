/**
 * The errors of the OAuth endpoints, in RFC 6749 §5.2's shape (`{"error", "error_description"}`), not
 * OpenAI's: OAuth clients (ChatGPT, Claude, the MCP SDKs) parse this one. The description is a sentence
 * that says what to do.
 */
export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(error: string, description: string, status = 400, headers: Record<string, string> = {}) {
    super(description);
    this.name = 'OAuthError';
    this.error = error;
    this.status = status;
    this.headers = headers;
  }

  toJSON() {
    return { error: this.error, error_description: this.message };
  }
}

/** Token and registration answers must never be cached (RFC 6749 §5.1). */
export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

export function oauthJson(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...NO_STORE, ...headers } });
}

export function oauthErrorResponse(err: OAuthError): Response {
  return oauthJson(err.toJSON(), err.status, err.headers);
}
