import { CallToolRequestSchema, InitializeRequestSchema, ListToolsRequestSchema, PingRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { isObj } from '../core/json.ts';

/**
 * Requests whose params do not fit their method. The MCP SDK checks them only once it dispatches, and
 * answers a misfit as an internal error (-32603, JSON-RPC's 500); the relay answers it as what it is,
 * invalid params (-32602), naming the field, before the SDK sees the message.
 */
const SCHEMAS = new Map<string, { safeParse(value: unknown): { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } } }>([
  ['initialize', InitializeRequestSchema],
  ['ping', PingRequestSchema],
  ['tools/list', ListToolsRequestSchema],
  ['tools/call', CallToolRequestSchema],
]);

/** The JSON-RPC answer for `message` when one of its requests has params its method cannot take, else undefined. */
export function invalidParamsAnswer(message: unknown): unknown {
  const requests = Array.isArray(message) ? message : [message];
  for (const request of requests) {
    if (!isObj(request) || typeof request.method !== 'string' || !('id' in request)) continue;
    const schema = SCHEMAS.get(request.method);
    const result = schema?.safeParse(request);
    if (!result || result.success) continue;
    const issue = result.error!.issues[0];
    const where = issue.path.map(String).join('.');
    const answer = {
      jsonrpc: '2.0',
      id: request.id,
      error: { code: -32602, message: `Invalid params for ${request.method}${where ? ` at ${where}` : ''}: ${issue.message}.` },
    };
    return Array.isArray(message) ? [answer] : answer;
  }
  return undefined;
}
