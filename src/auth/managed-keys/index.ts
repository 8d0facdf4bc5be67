import type { RelayConfig } from '../../config.ts';
import type { Logger } from '../../core/logger.ts';
import { keyDirectory, keyId, type KeyDirectory } from '../key-source.ts';
import { openSqlEngine } from '../oauth/sql-engine.ts';
import { keyAdmin, type KeyAdmin } from './admin.ts';
import { managedKeyCache } from './cache.ts';
import { lastUseRecorder } from './last-use.ts';
import { managedKeyStore } from './store.ts';

/**
 * The relay's keys, assembled: RELAY_KEY's, plus — when RELAY_ADMIN_KEY is set, so someone can manage
 * them — the keys kept in the database (the ledger's), with their cache and the admin operations.
 * Without an admin key the database is not opened and only RELAY_KEY's keys open the relay (fail closed:
 * managed keys work again once RELAY_ADMIN_KEY is set again).
 */
export interface RelayKeys {
  directory: KeyDirectory;
  /** Undefined when managed keys are off (no RELAY_ADMIN_KEY). */
  admin?: KeyAdmin;
  close(): Promise<void>;
}

export interface RelayKeysOverrides {
  /** Postgres schema (tests). */
  schema?: string;
  now?: () => number;
}

export async function openRelayKeys(config: RelayConfig, logger: Logger, overrides: RelayKeysOverrides = {}): Promise<RelayKeys> {
  if (!config.adminKey) return { directory: keyDirectory(config.relayKeys), close: async () => {} };
  const now = overrides.now ?? Date.now;
  const store = managedKeyStore(await openSqlEngine({ databaseUrl: config.ops.databaseUrl, sqlitePath: config.ops.usageDbPath, schema: overrides.schema }));
  const lastUse = lastUseRecorder(store, () => Promise.all(config.relayKeys.map((k) => keyId(k.key))), config.relayKeys.length, now);
  const logError = (what: string) => (err: unknown) => logger.error({ err: { message: (err as Error)?.message } }, what);
  let cache;
  try {
    cache = await managedKeyCache({
      store,
      now,
      onUse: lastUse.managed,
      onTick: () => void lastUse.flush().catch(logError('relay keys: last use not written')),
      onError: logError('relay keys: the database cannot be read; the keys loaded last stay in force'),
      onRecover: () => logger.info('relay keys: the database answers again'),
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  const managed = cache;
  const directory = keyDirectory(config.relayKeys, {
    lookup: managed.lookup,
    byId: managed.byId,
    refresh: managed.refresh,
    configUsed: (index) => lastUse.config(index, managed.coarseNow()),
  });
  warnAboutLabels(config, managed.labels(), logger);
  return {
    directory,
    admin: keyAdmin({ configKeys: config.relayKeys, store, cache: managed, lastUse, onEvent: (event, fields) => logger.info(fields, event), now }),
    async close() {
      managed.close();
      await lastUse.flush(true).catch(() => {});
      await store.close();
    },
  };
}

/** A RELAY_KEY label that a managed key also has (added to RELAY_KEY later), or RATE_LIMITS naming no key: said at start-up. */
function warnAboutLabels(config: RelayConfig, managedLabels: ReadonlySet<string>, logger: Logger): void {
  for (const { label } of config.relayKeys) {
    if (managedLabels.has(label)) logger.warn({ label }, 'a RELAY_KEY entry and a managed key share this label, so their usage and limits are counted together: rename one');
  }
  for (const label of config.ops.limits.keys()) {
    if (label !== '*' && !managedLabels.has(label) && !config.relayKeys.some((k) => k.label === label)) {
      logger.warn({ label }, 'RATE_LIMITS names a label no relay key has (yet): it applies once a key with that label is created');
    }
  }
}
