/**
 * What every Meta webhook route (WhatsApp Cloud API, Instagram Messaging) does the same way:
 * the subscription handshake, the X-Hub-Signature-256 check on the exact raw bytes against
 * each addressed channel's own app secret (or the deployment's) before anything is trusted,
 * a short-lived account → channel routing cache, and "all accepted or 503" for the hand-off
 * to Temporal and the database.
 */
import type { Request, RequestHandler, Response } from 'express';
import { safeEqual, verifyMetaSignature } from '../../lib/crypto';
import type { Logger } from '../../lib/logger';
import type { ChannelRouting, ChannelService, Platform } from '../../services/channels';

export const WEBHOOK_BODY_LIMIT = '3mb';

export type RouteAccount = (accountId: string) => Promise<ChannelRouting | undefined>;

/** account id (phone_number_id, Instagram account id) → channel account, cached briefly: the hot path reads no database on a hit. */
export function createRoutingCache(channels: ChannelService, platform: Platform, ttlMs: number): RouteAccount {
  const cache = new Map<string, { at: number; routing: ChannelRouting }>();
  return async (accountId: string): Promise<ChannelRouting | undefined> => {
    const hit = cache.get(accountId);
    if (hit && Date.now() - hit.at < ttlMs) return hit.routing;
    const routing = await channels.routingByPhoneNumberId(platform, accountId);
    if (routing) cache.set(accountId, { at: Date.now(), routing });
    else cache.delete(accountId);
    return routing;
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

/** A body whose signature matched every secret its (best-effort) account ids call for. */
export interface SignedBody {
  raw: Buffer;
  signature: string;
  json: unknown;
  /** Routings looked up so far (undefined = no such channel). */
  routings: Map<string, ChannelRouting | undefined>;
  /** Secrets the signature was checked against. */
  checked: Set<string | undefined>;
}

export interface SignatureCheckOptions {
  route: RouteAccount;
  /** Deployment-wide Meta app secret; a channel account may override it. */
  appSecret?: string;
  log: Logger;
  /** Best-effort, bounded list of the account ids a body addresses, read before it is trusted. */
  accountIdsOf: (json: unknown) => string[];
  /** Log key for those ids ("phoneNumberIds", "instagramAccountIds"). */
  logKey: string;
}

function rejectSignature(res: Response, message: string): void {
  res.status(401).json({ error: { code: 'invalid_signature', message } });
}

export function createSignatureCheck(opts: SignatureCheckOptions) {
  const { log } = opts;
  return {
    /**
     * Check the signature of the raw body (`express.raw`) and parse it as JSON. Answers the
     * request itself (401, 400) and returns undefined when the body must not be used.
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

      // Which secret must have signed this body: each known channel's own, else the deployment's.
      const routings = new Map<string, ChannelRouting | undefined>();
      for (const id of opts.accountIdsOf(json)) routings.set(id, await opts.route(id));
      const secrets = new Set<string | undefined>();
      for (const routing of routings.values()) if (routing) secrets.add(routing.appSecret ?? opts.appSecret);
      if (secrets.size === 0) secrets.add(opts.appSecret);
      for (const secret of secrets) {
        if (!secret) {
          log.error('webhook rejected: no Meta app secret configured (META_APP_SECRET or the channel\'s appSecret)');
          rejectSignature(res, 'no app secret configured to verify this webhook');
          return undefined;
        }
        if (!verifyMetaSignature(raw, signature, secret)) {
          log.warn({ [opts.logKey]: [...routings.keys()] }, 'webhook rejected: bad signature');
          rejectSignature(res, 'X-Hub-Signature-256 does not match the body');
          return undefined;
        }
      }

      if (jsonError !== undefined) {
        res.status(400).json({ error: { code: 'invalid_json', message: `body is not valid JSON: ${jsonError}` } });
        return undefined;
      }
      return { raw, signature, json, routings, checked: new Set(secrets) };
    },

    /**
     * accountIdsOf() is bounded, so an item past its bounds had no secret checked yet: every
     * account acted on must have been signed with its own channel's secret (unknown ones are
     * dropped later). Answers 401 and returns false otherwise.
     */
    async verifyAccounts(signed: SignedBody, accountIds: Iterable<string>, res: Response): Promise<boolean> {
      for (const id of accountIds) {
        if (signed.routings.has(id)) continue;
        const routing = await opts.route(id);
        signed.routings.set(id, routing);
        if (!routing) continue;
        const secret = routing.appSecret ?? opts.appSecret;
        if (signed.checked.has(secret)) continue;
        if (!secret || !verifyMetaSignature(signed.raw, signed.signature, secret)) {
          log.warn({ [opts.logKey]: [id] }, 'webhook rejected: bad signature');
          rejectSignature(res, 'X-Hub-Signature-256 does not match the body');
          return false;
        }
        signed.checked.add(secret);
      }
      return true;
    },
  };
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
    log.error({ failed: failed.length, err: failed[0]!.reason }, 'webhook not accepted: Temporal or the database refused; Meta will retry');
    res.status(503).json({ error: { code: 'unavailable', message: 'could not accept the webhook now; retry later' } });
    return false;
  }
  return true;
}
