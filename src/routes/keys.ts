import type { OpenAPIHono } from '@hono/zod-openapi';
import type { z } from 'zod';
import { routes } from '../../generated/routes.ts';
import { CreateRelayKeyRequestSchema, RotateRelayKeyRequestSchema } from '../../generated/schemas.ts';
import type { IssuedKey, KeyAdmin, KeyInfo } from '../auth/managed-keys/admin.ts';
import type { RelayContext, RelayEnv } from '../core/env.ts';
import { RelayError } from '../core/errors.ts';
import { checkPathParam } from '../core/path-params.ts';
import { readJsonBody } from '../core/read-body.ts';

/**
 * The key admin API under /v1/relay/keys (admin key required: see `isKeysPath` in app.ts; registered
 * only when RELAY_ADMIN_KEY is set, as managed keys are): list, create, rotate, revoke. Thin: the rules
 * live in auth/managed-keys/admin.ts, shared with the admin page. Bodies are checked with the generated
 * schemas; answers use Unix seconds and snake_case, like OpenAI's. A secret appears only in the answer
 * that issued it (never cached), and never in a log line.
 */

export const KEYS_PATH = '/v1/relay/keys';
export const isKeysPath = (path: string) => path === KEYS_PATH || path.startsWith(`${KEYS_PATH}/`);

/** A key request is a label or an overlap: a few dozen bytes. */
const KEYS_BODY_CAP = 4096;

const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));

export const keyJson = (k: KeyInfo) => ({
  object: 'relay.key',
  id: k.id,
  label: k.label,
  source: k.source,
  read_only: k.readOnly,
  status: k.revokedAt === undefined ? 'active' : 'revoked',
  created_at: seconds(k.createdAt),
  rotated_at: seconds(k.rotatedAt),
  revoked_at: seconds(k.revokedAt),
  last_used_at: seconds(k.lastUsedAt),
});

const issuedJson = (k: IssuedKey) => ({
  object: 'relay.key',
  id: k.id,
  label: k.label,
  key: k.key,
  created_at: seconds(k.createdAt),
  rotated_at: seconds(k.rotatedAt),
  previous_key_expires_at: seconds(k.previousExpiresAt),
});

const answer = (c: RelayContext, body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'x-request-id': c.get('requestId'), 'cache-control': 'no-store' } });

/** The request body, checked against its generated schema; `optional`: an empty body is `{}`. */
async function bodyOf<T extends z.ZodType>(c: RelayContext, schema: T, optional = false): Promise<z.infer<T>> {
  const { incoming } = c.env;
  const empty = (incoming.headers['content-length'] ?? '0') === '0' && !incoming.headers['transfer-encoding'];
  const json = optional && empty ? {} : await readJsonBody(incoming, KEYS_BODY_CAP, 'key request', 'a JSON object');
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.join('.') || undefined;
  throw new RelayError(400, `Invalid request${param ? ` at ${param}` : ''}: ${issue.message}.`, { code: 'invalid_request', param });
}

export function registerKeyRoutes(app: OpenAPIHono<RelayEnv>, admin: KeyAdmin): void {
  for (const route of [routes.listRelayKeys, routes.createRelayKey, routes.rotateRelayKey, routes.revokeRelayKey]) app.openAPIRegistry.registerPath(route);

  app.get(KEYS_PATH, async (c) => answer(c, { object: 'list', data: (await admin.list()).map(keyJson) }));

  app.post(KEYS_PATH, async (c) => answer(c, issuedJson(await admin.create((await bodyOf(c, CreateRelayKeyRequestSchema)).label)), 201));

  app.post(`${KEYS_PATH}/:key_id/rotate`, async (c) => {
    const { overlap_seconds } = await bodyOf(c, RotateRelayKeyRequestSchema, true);
    return answer(c, issuedJson(await admin.rotate(checkPathParam('key_id', c.req.param('key_id')), overlap_seconds)));
  });

  app.delete(`${KEYS_PATH}/:key_id`, async (c) => {
    const revoked = await admin.revoke(checkPathParam('key_id', c.req.param('key_id')));
    return answer(c, { object: 'relay.key.deleted', id: revoked.id, label: revoked.label, deleted: true, revoked_at: seconds(revoked.revokedAt) });
  });
}
