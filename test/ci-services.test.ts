import { expect, test } from 'vitest';

/**
 * The ledger (PostgreSQL) and shared-limit (Redis) suites skip when their servers are absent on a
 * developer's machine. In CI they must never skip: .ci/run starts both and exports their URLs.
 */
test.runIf(process.env.CI === 'true')('CI provides PostgreSQL and Redis to the suite', () => {
  expect(process.env.TEST_DATABASE_URL, 'TEST_DATABASE_URL (set by .ci/services.sh)').toMatch(/^postgres:\/\//);
  expect(process.env.TEST_REDIS_URL, 'TEST_REDIS_URL (set by .ci/services.sh)').toMatch(/^redis:\/\//);
});
