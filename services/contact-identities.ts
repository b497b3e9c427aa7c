/**
 * Which lead a WhatsApp user is, whatever form they wrote with.
 *
 * Meta identifies a WhatsApp user by a phone number, a business-scoped user id (BSUID), a
 * parent BSUID, or several of them at once, and the set changes: a user who adopts a
 * username may arrive without a number, a number change regenerates the BSUID. A lead's
 * workflow id is made from the contact id of the FIRST form seen (`lead:{channelAccountId}:{keyed
 * digest}`, lib/lead-ids.ts), and `contact_identities` maps every form seen since (per channel account) to it.
 *
 * The webhook asks before signalling, for a whole body at once: `resolve` takes every
 * sender/recipient of the body (each with all the forms its item carried) and answers each
 * one's contact id. Forms that meet in one item (a message with phone + BSUID, an identity
 * change's previous and new forms) belong together: an item whose forms are partly known
 * goes to the known contact and its new forms are recorded for it; an item with no known
 * form starts a contact with its own first form (phone number first, as Meta recommends
 * sending to it). Cost: one statement for the body, and none when every form is in the
 * short in-process cache (a mapping never changes once written, so caching it is safe).
 */
import { sql } from 'drizzle-orm';
import type { ContactIdentity } from '../contract/messages';
import type { ContactIdentityKind as IdentityKind } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { isBsuid } from '../lib/bsuid';
import { rowsOf } from './db-util';

export interface IdentityForm {
  identity: string;
  kind: IdentityKind;
}

/** One sender or recipient of a webhook item. */
export interface IdentityQuery {
  channelAccountId: string;
  /** Every form the item carried, the preferred first-form first. */
  forms: IdentityForm[];
  /** The contact id when none of the forms is known yet (the item's own sender form). */
  fallback: string;
  /**
   * May this item start a contact when none of its forms is known (default true)? A status
   * only links new forms to a known contact: it never makes one up.
   */
  create?: boolean;
}

/** The forms of a parsed contact: phone number first (Meta: send to it when known), then BSUID, parent BSUID, then the previous ones of an identity change. */
/** The longest form kept (the webhook's contact id bound). */
const MAX_FORM_LENGTH = 128;
const storable = (value: string) => value.length <= MAX_FORM_LENGTH && !value.includes('\u0000') && value.isWellFormed();

export function identityForms(identity: ContactIdentity | undefined, fallback: string): IdentityForm[] {
  const out: IdentityForm[] = [];
  // only forms the table can hold: a form over the contact id bound, or with a NUL (PostgreSQL
  // refuses it in text and jsonb), would make the one statement fail and the webhook answer 503
  const add = (value: string | undefined, kind: IdentityKind) => {
    if (value && storable(value) && !out.some((f) => f.identity === value)) out.push({ identity: value, kind });
  };
  add(identity?.previous?.phone, 'phone');
  add(identity?.previous?.bsuid, 'bsuid');
  add(identity?.previous?.parentBsuid, 'parent_bsuid');
  add(identity?.phone, 'phone');
  add(identity?.bsuid, 'bsuid');
  add(identity?.parentBsuid, 'parent_bsuid');
  if (!out.some((f) => f.identity === fallback)) out.push({ identity: fallback, kind: isBsuid(fallback) ? 'bsuid' : 'phone' });
  return out;
}

export interface ResolveResult {
  /** The contact id of each query, in order. */
  contactIds: string[];
  /** Database statements run (0 or 1). */
  queries: number;
  /** Items whose forms were already recorded for two different contacts (the oldest wins). */
  conflicts: number;
}


export interface ContactIdentityOptions {
  /** How long a known form → contact mapping is remembered in this process (default 10 min). */
  cacheTtlMs?: number;
  /** At most this many cached forms (default 100,000; the oldest go first). */
  cacheMaxEntries?: number;
}

export function createContactIdentityService(db: Db, opts: ContactIdentityOptions = {}) {
  const ttlMs = opts.cacheTtlMs ?? 10 * 60_000;
  const maxEntries = opts.cacheMaxEntries ?? 100_000;
  const cache = new Map<string, { contactId: string; at: number }>();
  const key = (channelAccountId: string, identity: string) => `${channelAccountId}\u0000${identity}`;

  function cached(channelAccountId: string, identity: string): string | undefined {
    const k = key(channelAccountId, identity);
    const hit = cache.get(k);
    if (!hit) return undefined;
    if (Date.now() - hit.at >= ttlMs) {
      cache.delete(k);
      return undefined;
    }
    return hit.contactId;
  }

  function remember(channelAccountId: string, identity: string, contactId: string): void {
    const k = key(channelAccountId, identity);
    cache.delete(k);
    cache.set(k, { contactId, at: Date.now() });
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
  }

  return {
    /**
     * The contact id of every query (see the module comment). Queries of one channel
     * account that share a form are one contact (the first one's fallback applies).
     */
    async resolve(queries: IdentityQuery[]): Promise<ResolveResult> {
      // union the queries that share a form (per channel account): one person, one contact
      const parent = queries.map((_, i) => i);
      const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
      const owner = new Map<string, number>();
      queries.forEach((q, i) => {
        for (const f of q.forms) {
          const k = key(q.channelAccountId, f.identity);
          const j = owner.get(k);
          if (j === undefined) owner.set(k, i);
          else {
            const a = find(i);
            const b = find(j);
            if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
          }
        }
      });
      const groups = new Map<number, { channelAccountId: string; forms: IdentityForm[]; fallback: string; create: boolean }>();
      queries.forEach((q, i) => {
        const root = find(i);
        const g = groups.get(root) ?? { channelAccountId: q.channelAccountId, forms: [], fallback: queries[root]!.fallback, create: false };
        for (const f of q.forms) if (!g.forms.some((x) => x.identity === f.identity)) g.forms.push(f);
        g.create ||= q.create !== false;
        groups.set(root, g);
      });

      const resolved = new Map<number, string>();
      const misses: { root: number; channelAccountId: string; forms: IdentityForm[]; fallback: string; create: boolean }[] = [];
      for (const [root, g] of groups) {
        const hits = g.forms.map((f) => cached(g.channelAccountId, f.identity));
        if (hits.every((h) => h !== undefined) && new Set(hits).size === 1) resolved.set(root, hits[0]!);
        else misses.push({ root, ...g });
      }

      let conflicts = 0;
      if (misses.length > 0) {
        const input = misses.flatMap((g, gi) => g.forms.map((f) => ({ g: gi, a: g.channelAccountId, i: f.identity, k: f.kind, f: g.fallback, c: g.create })));
        // one statement: the contact each group already has (the oldest mapping of any of its
        // forms), else its fallback; then record every form not yet recorded for that contact
        const result = await db.execute(sql`
          WITH input AS (
            SELECT * FROM jsonb_to_recordset(${JSON.stringify(input)}::jsonb) AS x(g int, a uuid, i text, k text, f text, c boolean)
          ),
          known AS (
            SELECT input.g, c.contact_id, c.created_at
            FROM input JOIN contact_identities c ON c.channel_account_id = input.a AND c.identity = input.i
          ),
          first_known AS (
            SELECT DISTINCT ON (g) g, contact_id FROM known ORDER BY g, created_at, contact_id
          ),
          known_count AS (
            SELECT g, count(DISTINCT contact_id)::int AS n FROM known GROUP BY g
          ),
          chosen AS (
            SELECT grp.g, grp.a, grp.c, coalesce(fk.contact_id, grp.f) AS contact_id, coalesce(kc.n, 0) AS n
            FROM (SELECT DISTINCT g, a, f, c FROM input) grp
            LEFT JOIN first_known fk ON fk.g = grp.g
            LEFT JOIN known_count kc ON kc.g = grp.g
          ),
          inserted AS (
            INSERT INTO contact_identities (channel_account_id, identity, kind, contact_id)
            SELECT DISTINCT ON (input.a, input.i) input.a, input.i, input.k, chosen.contact_id
            FROM input JOIN chosen ON chosen.g = input.g
            WHERE chosen.n > 0 OR chosen.c
            ORDER BY input.a, input.i, input.g
            ON CONFLICT (channel_account_id, identity) DO NOTHING
            RETURNING 1
          )
          SELECT g, contact_id, n FROM chosen
        `);
        const rows = rowsOf<{ g: number | string; contact_id: string; n: number | string }>(result);
        for (const row of rows) {
          const g = misses[Number(row.g)];
          if (!g) continue;
          resolved.set(g.root, row.contact_id);
          if (Number(row.n) > 1) {
            conflicts += 1;
            continue; // forms of two contacts: only the chosen one is certain, cache nothing
          }
          if (Number(row.n) === 0 && !g.create) continue; // nothing recorded: nothing to remember
          for (const f of g.forms) remember(g.channelAccountId, f.identity, row.contact_id);
        }
      }
      return {
        contactIds: queries.map((q, i) => resolved.get(find(i)) ?? q.fallback),
        queries: misses.length > 0 ? 1 : 0,
        conflicts,
      };
    },

    /** Forget the in-process cache (tests). */
    clearCache(): void {
      cache.clear();
    },
  };
}

export type ContactIdentityService = ReturnType<typeof createContactIdentityService>;
