/**
 * What every Meta webhook route (WhatsApp Cloud API, Instagram Messaging) does the same way:
 * the subscription handshake, the X-Hub-Signature-256 check on the exact raw bytes against
 * each addressed channel's own app secret (or the deployment's) before anything is trusted,
 * with a bounded cost for forged bodies (see createSignatureCheck), a short-lived account →
 * channel routing cache with a negative side, and "all accepted or 503" for the hand-off to
 * Temporal and the database.
 */
import { describeDatabaseError } from '../../services/db-util';
import type { Request, RequestHandler, Response } from 'express';
import { safeEqual, verifyMetaSignature } from '../../lib/crypto';
import type { Logger } from '../../lib/logger';
import type { ChannelRouting, ChannelService, Platform } from '../../services/channels';
import { deterministicRefusal } from '../../temporal/refusals';

export const WEBHOOK_BODY_LIMIT = '3mb';

/**
 * Distinct account ids (phone_number_ids, Instagram account ids) a body may name before it is
 * trusted. Meta sends one delivery per app, batching at most 1,000 updates ("Event
 * Notifications are aggregated and sent in a batch with a maximum of 1000 updates",
 * https://developers.facebook.com/docs/graph-api/webhooks/getting-started), and in practice one entry per WhatsApp Business Account or Instagram account
 * with one change per phone number; a WhatsApp Business Account holds at most a few dozen
 * numbers (2 by default, up to 20 after business verification, more by request). 100 distinct
 * accounts is far above anything Meta sends and bounds what an unsigned body can make us look
 * up. A body signed with the deployment's secret is trusted and has no such cap.
 */
export const MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY = 100;
/** Meta's account ids are numeric strings of 15–17 digits; anything longer is no account of ours. */
export const MAX_ACCOUNT_ID_LENGTH = 64;

export interface AccountRouterOptions {
  /** How long a known account → channel routing is kept. */
  ttlMs: number;
  /** How long an account id with no channel is remembered as unknown (for bodies not yet trusted only). */
  negativeTtlMs?: number;
  /** Entries kept in each of the two caches (oldest dropped first). */
  maxEntries?: number;
}

export interface AccountRouter {
  /**
   * Routings of these account ids (undefined = no such channel): from memory where cached, the
   * rest in ONE query. `trusted: false` (a body whose signature is not verified yet) also
   * answers from the negative cache, so repeating unknown ids costs no query at all.
   */
  lookup(ids: readonly string[], opts: { trusted: boolean }): Promise<Map<string, ChannelRouting | undefined>>;
  /** The routings memory alone knows, or undefined when any id is not cached as known. */
  cachedOnly(ids: readonly string[]): Map<string, ChannelRouting> | undefined;
}

/** account id → channel account, cached briefly: the hot path reads no database on a hit. */
export function createAccountRouter(
  channels: Pick<ChannelService, 'routingsByAccountIds'> & Partial<Pick<ChannelService, 'onDeleted'>>,
  platform: Platform,
  opts: AccountRouterOptions,
): AccountRouter {
  const negativeTtlMs = opts.negativeTtlMs ?? 10_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const known = new Map<string, { at: number; routing: ChannelRouting }>();
  const unknown = new Map<string, number>();
  const remember = <V>(cache: Map<string, V>, id: string, value: V) => {
    cache.delete(id);
    if (cache.size >= maxEntries) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(id, value);
  };
  // a channel this process deletes is forgotten at once (other processes: within ttlMs, and no lead run starts on it)
  channels.onDeleted?.((c) => {
    if (c.platform === platform) known.delete(c.phoneNumberId);
  });
  const fresh = (id: string, now: number) => {
    const hit = known.get(id);
    if (hit && now - hit.at < opts.ttlMs) return hit.routing;
    return undefined;
  };
  return {
    async lookup(ids, { trusted }) {
      const now = Date.now();
      const out = new Map<string, ChannelRouting | undefined>();
      const missing: string[] = [];
      for (const id of ids) {
        if (out.has(id)) continue;
        const routing = fresh(id, now);
        if (routing) out.set(id, routing);
        else if (id.length > MAX_ACCOUNT_ID_LENGTH) out.set(id, undefined);
        else if (!trusted && (unknown.get(id) ?? 0) > now) out.set(id, undefined);
        else missing.push(id);
      }
      if (missing.length === 0) return out;
      const found = await channels.routingsByAccountIds(platform, missing);
      const at = Date.now();
      for (const id of missing) {
        const routing = found.get(id);
        out.set(id, routing);
        if (routing) {
          remember(known, id, { at, routing });
          unknown.delete(id);
        } else {
          known.delete(id);
          remember(unknown, id, at + negativeTtlMs);
        }
      }
      return out;
    },
    cachedOnly(ids) {
      const now = Date.now();
      const out = new Map<string, ChannelRouting>();
      for (const id of ids) {
        const routing = fresh(id, now);
        if (!routing) return undefined;
        out.set(id, routing);
      }
      return out;
    },
  };
}

/** Meta's subscription handshake: echo `hub.challenge` for the deployment's or a registered channel's verify token. */
export function verifyHandshake(deps: { channels: ChannelService; verifyToken?: string; log: Logger }): RequestHandler {
  return async (req: Request, res: Response) => {
    const mode = req.query['hub.mode'];
    const token = req.query['hub.verify_token'];
    const challenge = req.query['hub.challenge'];
    if (mode !== 'subscribe' || typeof token !== 'string' || typeof challenge !== 'string' || challenge.length > 200) {
      res.status(403).type('text/plain').send('forbidden');
      return;
    }
    const ok = (deps.verifyToken !== undefined && safeEqual(token, deps.verifyToken)) || (await deps.channels.verifyTokenRegistered(token));
    if (!ok) {
      deps.log.warn('webhook verification with an unknown verify token');
      res.status(403).type('text/plain').send('forbidden');
      return;
    }
    res.status(200).type('text/plain').send(challenge);
  };
}

/** A body whose signature matched every secret its account ids call for. */
export interface SignedBody {
  raw: Buffer;
  signature: string;
  json: unknown;
  /** Routings looked up so far (undefined = no such channel). */
  routings: Map<string, ChannelRouting | undefined>;
  /** Secrets the signature was checked against. */
  checked: Set<string | undefined>;
  /** Signed with the deployment's own secret (Meta's delivery to the deployment's app). */
  trusted: boolean;
}

export interface SignatureCheckOptions {
  router: AccountRouter;
  /** Deployment-wide Meta app secret; a channel account may override it. */
  appSecret?: string;
  log: Logger;
  /** Every distinct account id a body names (read before it is trusted; ids are not checked further). */
  accountIdsOf: (json: unknown) => string[];
  /**
   * For a body that names no account id (WhatsApp Business Account changes: template webhooks
   * name the account, entry.id, not a phone number): the own app secrets of the channels of the
   * accounts it names, at most MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY accounts in ONE lookup. The body
   * is accepted when one of them signed it; what it may change is decided per channel later.
   */
  businessAccountSecretsOf?: (json: unknown) => Promise<string[]>;
}

function rejectSignature(res: Response, message: string): void {
  res.status(401).json({ error: { code: 'invalid_signature', message } });
}

/** Set by the failed-auth guard (api/middleware/rate-limit.ts) on a request from an address that failed too often. */
export interface AuthFailureBlock {
  retryAfterSeconds: number;
}

function refuseBlocked(res: Response, block: AuthFailureBlock): void {
  res.setHeader('Retry-After', String(block.retryAfterSeconds));
  res.status(429).json({ error: { code: 'rate_limited', message: 'too many failed authentication attempts from this address; retry later' } });
}

/**
 * The order of the checks makes a forged body cheap: (1) the deployment's secret, an HMAC in
 * memory: a body it signs is Meta's and is trusted, and only then are its accounts looked up
 * (one query) so that a channel with its own app secret is still verified with that secret;
 * (2) otherwise the body may only be one channel's own: an address blocked by the failed-auth
 * limit gets 429 here unless memory alone can verify it, a body naming more than
 * MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY accounts is refused without a lookup, and the rest are
 * looked up in ONE query, unknown ids remembered briefly. Logs carry counts, never the ids.
 */
export function createSignatureCheck(opts: SignatureCheckOptions) {
  const { log, router } = opts;
  const deploymentSecret = opts.appSecret;
  return {
    /**
     * Check the signature of the raw body (`express.raw`) and parse it as JSON. Answers the
     * request itself (401, 429, 400) and returns undefined when the body must not be used.
     */
    async read(req: Request, res: Response): Promise<SignedBody | undefined> {
      const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const signature = req.header('x-hub-signature-256');
      if (!signature) {
        rejectSignature(res, 'X-Hub-Signature-256 header is missing');
        return undefined;
      }
      let json: unknown;
      let jsonError: string | undefined;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        jsonError = (err as Error).message;
      }
      const ids = opts.accountIdsOf(json);
      const secretMatches = (secret: string | undefined) => secret !== undefined && verifyMetaSignature(raw, signature, secret);
      const badSignature = (fields: Record<string, unknown>) => {
        log.warn({ accountIds: ids.length, ...fields }, 'webhook rejected: bad signature');
        rejectSignature(res, 'X-Hub-Signature-256 does not match the body');
        return undefined;
      };

      let routings: Map<string, ChannelRouting | undefined>;
      const checked = new Set<string | undefined>();
      const trusted = secretMatches(deploymentSecret);
      if (trusted) {
        checked.add(deploymentSecret);
        routings = await router.lookup(ids, { trusted: true });
        // a channel on its own app secret is only reached by a body that secret signed
        for (const routing of routings.values()) {
          const own = routing?.appSecret;
          if (own === undefined || checked.has(own)) continue;
          if (!secretMatches(own)) return badSignature({ ownSecretChannels: 1 });
          checked.add(own);
        }
      } else {
        const block = res.locals.authFailureBlock as AuthFailureBlock | undefined;
        if (block) {
          // no database work for an address over its failure budget: memory alone may still verify
          const cached = ids.length > 0 ? router.cachedOnly(ids) : undefined;
          const secrets = new Set([...(cached?.values() ?? [])].map((r) => r.appSecret ?? deploymentSecret));
          if (!cached || ![...secrets].every(secretMatches)) {
            refuseBlocked(res, block);
            return undefined;
          }
          routings = cached;
          for (const s of secrets) checked.add(s);
        } else {
          if (ids.length > MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY) {
            return badSignature({ overCap: MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY });
          }
          // a body of business-account changes only, signed by a channel's own app secret
          const own = ids.length === 0 && opts.businessAccountSecretsOf ? (await opts.businessAccountSecretsOf(json)).find((s) => s !== deploymentSecret && secretMatches(s)) : undefined;
          if (own !== undefined) {
            checked.add(own);
            if (jsonError !== undefined) {
              res.status(400).json({ error: { code: 'invalid_json', message: `body is not valid JSON: ${jsonError}` } });
              return undefined;
            }
            return { raw, signature, json, routings: new Map(), checked, trusted: false };
          }
          routings = await router.lookup(ids, { trusted: false });
          const secrets = new Set<string | undefined>();
          for (const routing of routings.values()) if (routing) secrets.add(routing.appSecret ?? deploymentSecret);
          if ((secrets.size === 0 || secrets.has(undefined)) && !deploymentSecret) {
            log.error("webhook rejected: no Meta app secret configured (META_APP_SECRET or the channel's appSecret)");
            rejectSignature(res, 'no app secret configured to verify this webhook');
            return undefined;
          }
          const known = [...routings.values()].filter(Boolean).length;
          // only channels on their own secrets can have signed a body the deployment's secret did not
          if (secrets.size === 0) return badSignature({ known });
          for (const secret of secrets) {
            if (!secretMatches(secret)) return badSignature({ known });
            checked.add(secret);
          }
        }
      }

      if (jsonError !== undefined) {
        res.status(400).json({ error: { code: 'invalid_json', message: `body is not valid JSON: ${jsonError}` } });
        return undefined;
      }
      return { raw, signature, json, routings, checked, trusted };
    },

    /**
     * Every account acted on must have been signed with its own channel's secret (unknown ones
     * are dropped later). The parser may name an id accountIdsOf() skipped (one too long to be
     * an account): those are looked up here, all at once. Answers 401 and returns false otherwise.
     */
    async verifyAccounts(signed: SignedBody, accountIds: Iterable<string>, res: Response): Promise<boolean> {
      const missing = [...new Set(accountIds)].filter((id) => !signed.routings.has(id));
      if (missing.length === 0) return true;
      const found = await router.lookup(missing, { trusted: signed.trusted });
      for (const [id, routing] of found) {
        signed.routings.set(id, routing);
        if (!routing) continue;
        const secret = routing.appSecret ?? deploymentSecret;
        if (signed.checked.has(secret)) continue;
        if (!secret || !verifyMetaSignature(signed.raw, signed.signature, secret)) {
          log.warn({ accountIds: missing.length }, 'webhook rejected: bad signature');
          rejectSignature(res, 'X-Hub-Signature-256 does not match the body');
          return false;
        }
        signed.checked.add(secret);
      }
      return true;
    },
  };
}
/** An item Temporal refused for good (its own content): dropped, never a 5xx. */
export interface DroppedItem {
  item: string;
  reason: string;
}

/**
 * Second line of defence behind the parsers' limits: a hand-off that Temporal refuses for a
 * reason about that one item (payload too large, an id too long) can never succeed, so the item
 * is dropped and recorded instead of failing the body (a 503 would make Meta redeliver the whole
 * batch for 7 days). Any other failure is rethrown: it means "our side is down, retry".
 */
export async function unlessRefused(work: Promise<unknown>, item: string, dropped: DroppedItem[]): Promise<void> {
  try {
    await work;
  } catch (err) {
    const reason = deterministicRefusal(err);
    if (reason === undefined) throw err;
    dropped.push({ item, reason: `Temporal refused it: ${reason}` });
  }
}

/**
 * Wait for every hand-off (signals to Temporal, database writes). When any was refused,
 * answer 503 so Meta retries the whole body (redelivery is deduplicated downstream) and
 * return false.
 */
export async function acceptAll(work: Promise<unknown>[], res: Response, log: Logger): Promise<boolean> {
  const results = await Promise.allSettled(work);
  const failed = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed.length > 0) {
    // a database error carries the statement's parameters (numbers, message ids): log only its SQLSTATE, constraint and table
    const reason: unknown = failed[0]!.reason;
    const database = describeDatabaseError(reason);
    log.error({ failed: failed.length, ...(database ? { database } : { err: reason }) }, 'webhook not accepted: Temporal or the database refused; Meta will retry');
    res.status(503).json({ error: { code: 'unavailable', message: 'could not accept the webhook now; retry later' } });
    return false;
  }
  return true;
}
