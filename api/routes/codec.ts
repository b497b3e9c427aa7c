/**
 * The codec server the Temporal Web UI (and `temporal` CLI's `--codec-endpoint`) calls to show
 * Parley's encrypted payloads (temporal/payload-codec.ts): Temporal's remote codec protocol,
 * `POST /codec/decode` and `POST /codec/encode` with `{ payloads: [{ metadata: { k: base64 }, data: base64 }] }`
 * and the namespace in `X-Namespace`.
 *
 * - Credentials: `Authorization: Bearer <tenant API key>` (any role: every role reads
 *   conversations) decodes only payloads whose data key belongs to that tenant; a request
 *   naming another tenant's key or the platform key is refused whole (403), so a page never
 *   mixes tenants. The platform admin token decodes everything. With NODE_ENV=development only, and only from a loopback peer,
 *   a request without credentials from an allowed Web UI origin is served as the admin (the dev
 *   server's UI has no login and cannot send a key; `npm run dev` listens on 127.0.0.1).
 * - A payload whose key was destroyed (contact erased) or never existed comes back unchanged
 *   (still `binary/encrypted`): the UI shows it encoded. Unencrypted payloads come back unchanged.
 * - Encode (the UI sending a signal or an update) uses the platform key (no workflow id in the
 *   protocol); the worker decodes it like any other payload.
 * - CORS: only the origins of TEMPORAL_UI_ORIGINS, with preflight; body at most 4 MB (Temporal's
 *   payload limit), at most 1,000 payloads.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Payload } from '@temporalio/common';
import { publicRoute } from '../access';
import { doc } from '../openapi';
import { validate } from '../middleware/validate';
import { safeEqual } from '../../lib/crypto';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import { PayloadKeyUnavailable, type PayloadKey } from '../../services/payload-keys';
import { decryptPayload, encryptPayload, isEncrypted, keyIdOf } from '../../temporal/payload-codec';

export const CODEC_MAX_BODY = '4mb';
export const CODEC_MAX_PAYLOADS = 1000;

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const wirePayload = z.strictObject({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() }).meta({ id: 'CodecPayload' });
// proto3 JSON leaves an empty list out: the temporal CLI sends `{}` for a call without input
const codecBody = z.strictObject({ payloads: z.array(wirePayload).max(CODEC_MAX_PAYLOADS).default([]) }).meta({ id: 'CodecPayloads' });
type WirePayload = z.infer<typeof wirePayload>;

const fromWire = (p: WirePayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toWire = (p: Payload): WirePayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

const AUTH =
  "`Authorization: Bearer <tenant API key>` decodes only that tenant's payloads (a payload of another tenant, or of the platform key, refuses the whole request: 403); the platform admin token decodes all. Payloads whose key was destroyed (a contact erased: crypto-shredding) or is unknown, and unencrypted payloads, come back unchanged. CORS: only the Web UI origins of TEMPORAL_UI_ORIGINS. `X-Namespace`, when sent, must be Parley's namespace. Body at most 4 MB, at most 1,000 payloads.";

type Caller = { kind: 'admin' } | { kind: 'tenant'; tenantId: string };

export function createCodecRouter(deps: {
  services: Pick<Services, 'payloadKeys' | 'tenants'>;
  adminToken: string | undefined;
  origins: readonly string[];
  namespace: string;
  /** NODE_ENV=development: an allowed origin without credentials is served as the admin (the dev server's UI has no login). */
  development?: boolean;
  log: Logger;
}): Router {
  const origins = new Set(deps.origins.map((o) => o.trim().toLowerCase().replace(/\/+$/, '')));
  const r = Router();

  r.use('/codec', (req: Request, res: Response, next: NextFunction) => {
    const origin = req.header('origin');
    if (origin && origins.has(origin.toLowerCase())) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, x-namespace');
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Max-Age', '600');
    }
    if (req.method === 'OPTIONS') {
      res.status(origin && origins.has(origin.toLowerCase()) ? 204 : 403).end();
      return;
    }
    next();
  });
  r.use('/codec', express.json({ limit: CODEC_MAX_BODY, strict: true }));

  const isLoopback = (address: string | undefined) => address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';

  async function caller(req: Request): Promise<Caller> {
    const origin = req.header('origin');
    if (origin && !origins.has(origin.toLowerCase())) throw new AppError('forbidden', 'the codec server does not accept requests from this origin (TEMPORAL_UI_ORIGINS)');
    const ns = req.header('x-namespace');
    if (ns !== undefined && ns !== deps.namespace) throw new AppError('bad_request', `unknown namespace ${JSON.stringify(ns)}`);
    const m = /^Bearer\s+(.+)$/i.exec((req.header('authorization') ?? '').trim());
    const token = m?.[1]?.trim();
    if (!token) {
      // development only, and only from this machine (an Origin header is easy to forge; the peer address is not)
      if (deps.development && origin && isLoopback(req.socket.remoteAddress)) return { kind: 'admin' };
      throw new AppError('unauthorized', 'missing credentials: a tenant API key or the admin token as a bearer token');
    }
    if (deps.adminToken && safeEqual(token, deps.adminToken)) return { kind: 'admin' };
    const principal = await deps.services.tenants.authenticate(token);
    if (!principal) throw new AppError('unauthorized', 'missing or invalid API key');
    if (principal.suspended) throw new AppError('forbidden', 'this tenant is suspended', undefined, 'tenant_suspended');
    return { kind: 'tenant', tenantId: principal.tenantId };
  }

  async function keyOf(keyId: string): Promise<PayloadKey | undefined> {
    try {
      return await deps.services.payloadKeys.byId(keyId);
    } catch (err) {
      if (err instanceof PayloadKeyUnavailable) return undefined;
      throw err;
    }
  }

  const responses = { 200: codecBody };

  r.post(
    '/codec/decode',
    publicRoute('checks a tenant API key or the admin token itself (codec server)'),
    validate({ body: codecBody }),
    doc({ summary: 'Decode Temporal payloads (remote codec for the Web UI)', description: AUTH, tags: ['codec'], responses }),
    async (req, res) => {
      const who = await caller(req);
      const payloads = (res.locals.body as z.infer<typeof codecBody>).payloads.map(fromWire);
      const keys = await Promise.all(payloads.map((p) => (isEncrypted(p) && keyIdOf(p) ? keyOf(keyIdOf(p)!) : undefined)));
      if (who.kind === 'tenant' && keys.some((k) => k && k.tenantId !== who.tenantId)) {
        throw new AppError('forbidden', "a payload of this request is not this tenant's: nothing decoded");
      }
      const out = payloads.map((p, i) => {
        const key = keys[i];
        if (!key) return p;
        try {
          return decryptPayload(p, key);
        } catch {
          return p; // tampered or truncated: shown as it is
        }
      });
      res.json({ payloads: out.map(toWire) });
    },
  );

  r.post(
    '/codec/encode',
    publicRoute('checks a tenant API key or the admin token itself (codec server)'),
    validate({ body: codecBody }),
    doc({ summary: 'Encode Temporal payloads (remote codec for the Web UI)', description: `${AUTH} Encodes with the platform key (the protocol names no workflow).`, tags: ['codec'], responses }),
    async (req, res) => {
      await caller(req);
      const payloads = (res.locals.body as z.infer<typeof codecBody>).payloads.map(fromWire);
      if (payloads.length === 0) return void res.json({ payloads: [] });
      const key = await deps.services.payloadKeys.forWorkflow(undefined);
      res.json({ payloads: payloads.map((p) => (isEncrypted(p) ? p : encryptPayload(p, key))).map(toWire) });
    },
  );
  return r;
}
