import openapiTS, { astToString } from 'openapi-typescript';
import { HEADER } from './header.ts';
import type { Json } from './walk.ts';

/**
 * generated/openapi-types.ts (openapi-typescript) and generated/upstream-client.ts (openapi-fetch over
 * those types). `defaultNonNullable: false`: a field with a default is still optional, as a caller may
 * leave it out; the relay's handlers must not assume OpenAI filled it in.
 */
export async function emitTypes(spec: Json): Promise<string> {
  const ast = await openapiTS(structuredClone(spec) as Parameters<typeof openapiTS>[0], { alphabetize: false, defaultNonNullable: false });
  return `${HEADER}${astToString(ast)}`;
}

export const UPSTREAM_CLIENT = `${HEADER}import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { paths } from './openapi-types.ts';

/**
 * A typed client for the calls the relay makes to OpenAI itself (action helpers), not for pass-through.
 * It speaks application/json: answers are typed as their JSON content (an operation that may also answer
 * SSE or bytes is still read as JSON here).
 */
export type UpstreamClient = Client<paths, 'application/json'>;

export function createUpstreamClient(options: ClientOptions): UpstreamClient {
  return createClient<paths, 'application/json'>(options);
}
`;
