/**
 * Jest global setup: make sure the Temporal binaries exist, start one Temporal dev server
 * (in memory, headless) for the integration tests, and migrate DATABASE_URL if set.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { findTemporalBinary } from '../../temporal/binaries';
import { startDevServer, type DevServer } from '../../temporal/dev-server';

declare global {
   
  var __PARLEY_DEV_SERVER__: DevServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (!findTemporalBinary('cli') || !findTemporalBinary('test-server')) {
    execFileSync('bash', [path.join(__dirname, '../../scripts/setup-temporal.sh')], { stdio: 'inherit' });
  }
  if (!process.env.PARLEY_TEST_TEMPORAL_ADDRESS) {
    const server = await startDevServer({ uiPort: false });
    globalThis.__PARLEY_DEV_SERVER__ = server;
    process.env.PARLEY_TEST_TEMPORAL_ADDRESS = server.address;
  }
  // One master key for every stack of this run: on one shared database (CI) a stack may route a
  // webhook to a channel another test file registered (fixture numbers), and must be able to
  // unwrap the payload key that file's stack created for it (production has one master key too).
  process.env.PARLEY_TEST_ENCRYPTION_KEY ??= randomBytes(32).toString('base64');
  if (process.env.DATABASE_URL) {
    const { openDatabase, migrateDatabase } = await import('../../db/client');
    const database = await openDatabase({ url: process.env.DATABASE_URL, max: 1 });
    try {
      await migrateDatabase(database);
    } finally {
      await database.close();
    }
  }
}
