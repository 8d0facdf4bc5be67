import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../app.ts';
import type { ActionDeps } from '../actions/context.ts';

/** POST/GET/DELETE /mcp: MCP over Streamable HTTP (being built). */
export function registerMcpRoutes(_app: OpenAPIHono<RelayEnv>, _deps: ActionDeps, _contract: object): void {}
