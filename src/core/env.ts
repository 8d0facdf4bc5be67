import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { UsageAccount } from '../upstream/usage-account.ts';

/** What every Hono handler of the relay sees: node's request and response, and the request's own facts. */
export interface RelayEnv {
  Bindings: HttpBindings;
  Variables: {
    requestId: string;
    /** The caller's relay key label (never the key); `-` with RELAY_AUTH=off, `admin` on admin paths. */
    keyLabel: string;
    corsHeaders: Record<string, string> | undefined;
    /** The operation the request record names, when the route knows better than its path (an MCP tool's name). */
    operation?: string;
    /** Upstream calls a relay operation (an action, an MCP call) made on the caller's behalf, summed for its record. */
    usage?: UsageAccount;
  };
}

export type RelayContext = Context<RelayEnv>;
