import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from './schema';

export type Schema = typeof schema;
/** The drizzle database, whichever driver is behind it (postgres.js or PGlite). */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** The transaction `db.transaction` hands its callback; a service method takes one to join its caller's unit of work. */
export type DbTransaction = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** A human description without credentials, for logs. */
  describe: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** db/migrations, from the sources (tsx, jest) or from dist/db (compiled; the SQL is not copied by tsc). */
export const MIGRATIONS_FOLDER = [path.join(__dirname, 'migrations'), path.join(__dirname, '..', '..', 'db', 'migrations')].find((p) =>
  existsSync(path.join(p, 'meta', '_journal.json')),
) ?? path.join(__dirname, 'migrations');

export interface DatabaseOptions {
  /** postgres://… ; when absent, embedded PGlite is used. */
  url?: string;
  /** PGlite data directory; `memory://` for an in-memory database. */
  pgliteDataDir?: string;
  /** postgres.js pool size. */
  max?: number;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const client = postgres(opts.url, { max: opts.max ?? 10, onnotice: () => {} });
    const db = drizzle(client, { schema }) as unknown as Db;
    const u = new URL(opts.url);
    return {
      db,
      kind: 'postgres',
      describe: `postgres://${u.hostname}:${u.port || 5432}${u.pathname}`,
      ping: async () => {
        await db.execute(sql`select 1`);
      },
      close: async () => {
        await client.end({ timeout: 5 });
      },
    };
  }
  const dataDir = opts.pgliteDataDir ?? 'memory://';
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  // pgvector ships with PGlite (@electric-sql/pglite-pgvector); db/vector.ts creates the extension at start-up
  const { vector } = await import('@electric-sql/pglite-pgvector');
  const client = await PGlite.create(dataDir, { extensions: { vector } });
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    describe: dataDir.startsWith('memory://') ? 'pglite (in memory)' : `pglite ${dataDir}`,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      await client.close();
    },
  };
}

/** Apply the committed migrations in db/migrations; safe to run again. */
export async function migrateDatabase(database: Database, migrationsFolder = MIGRATIONS_FOLDER): Promise<void> {
  if (database.kind === 'postgres') {
    const { migrate } = await import('drizzle-orm/postgres-js/migrator');
    await migrate(database.db as never, { migrationsFolder });
  } else {
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    await migrate(database.db as never, { migrationsFolder });
  }
}
