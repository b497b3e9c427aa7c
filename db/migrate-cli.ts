/** `npm run db:migrate`: apply migrations to DATABASE_URL (or the embedded PGlite) and exit. */
import { loadConfig } from '../config';
import { createLogger } from '../lib/logger';
import { migrateDatabase, openDatabase } from './client';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.LOG_LEVEL }).child({ module: 'migrate' });
  const database = await openDatabase({ url: config.DATABASE_URL, pgliteDataDir: config.PGLITE_DATA_DIR, max: 1 });
  try {
    await migrateDatabase(database);
    log.info({ database: database.describe }, 'migrations applied');
  } finally {
    await database.close();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
