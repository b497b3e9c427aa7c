/**
 * The chaos run's PostgreSQL database: DATABASE_URL when given (used as is, never dropped;
 * every check is scoped to the run's own tenant), otherwise a fresh `parley_chaos_<random>`
 * on PGHOST:PGPORT (default 127.0.0.1:5432, user postgres), dropped at the end unless --keep.
 */
import { randomBytes } from 'node:crypto';
import type { Sql } from 'postgres';

export interface ChaosDatabase {
  url: string;
  /** Created for this run (and dropped by drop()). */
  created: boolean;
  name: string;
  drop(): Promise<void>;
}

function adminUrl(): string {
  const host = process.env.PGHOST || '127.0.0.1';
  const port = process.env.PGPORT || '5432';
  const user = process.env.PGUSER || 'postgres';
  const password = process.env.PGPASSWORD ? `:${encodeURIComponent(process.env.PGPASSWORD)}` : '';
  return `postgres://${encodeURIComponent(user)}${password}@${host}:${port}/postgres`;
}

async function admin<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(adminUrl(), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function openChaosDatabase(givenUrl: string | undefined): Promise<ChaosDatabase> {
  if (givenUrl) {
    return { url: givenUrl, created: false, name: new URL(givenUrl).pathname.slice(1), drop: async () => {} };
  }
  const name = `parley_chaos_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await admin((sql) => sql.unsafe(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    created: true,
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
