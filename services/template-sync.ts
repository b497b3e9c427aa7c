/**
 * Template sync: read a WhatsApp Business Account's message templates from the Graph API
 * (`GET /<version>/<WABA_ID>/message_templates`, every page) and store them for the tenant,
 * upserted by (tenant, name, language). A complete sync marks this account's templates Meta no
 * longer lists as DELETED. Pages are followed with `paging.cursors.after` against the configured
 * Graph API url (never the absolute `paging.next` url: the token only goes where config says),
 * until a page has no `paging.next`, at most `maxPages` pages.
 */
import { z } from 'zod';
import { AppError } from '../lib/errors';
import { parseGraphJson, readGraphError } from '../lib/graph-errors';
import type { Logger } from '../lib/logger';
import type { ChannelService } from './channels';
import { normalizeComponents } from './template-components';
import type { MetaTemplate, TemplateService } from './templates';

export interface TemplateSyncDeps {
  channels: Pick<ChannelService, 'syncCredentials'>;
  templates: Pick<TemplateService, 'upsertFromMeta' | 'markMissing'>;
  graphApiUrl: string;
  graphApiVersion: string;
  timeoutMs: number;
  log: Logger;
  /** Templates asked per page (Meta's limit parameter). */
  pageSize?: number;
  /** At most this many pages (a bound on a misbehaving `paging`); more → 502, nothing marked deleted. */
  maxPages?: number;
  fetch?: typeof fetch;
}

export interface TemplateSyncResult {
  channelId: string;
  wabaId: string;
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  /** Synced templates Meta no longer lists, now DELETED. */
  markedDeleted: number;
  /** Items of Meta's answer that were not templates (no name, language or id): skipped. */
  skipped: number;
}

const templateItemSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  name: z.string().min(1).max(512),
  language: z.string().min(2).max(20),
  status: z.string().min(1).max(50),
  category: z.string().min(1).max(50),
  components: z.array(z.unknown()).max(20).optional(),
  parameter_format: z.string().optional(),
  quality_score: z.looseObject({ score: z.string().optional() }).optional(),
  rejected_reason: z.string().optional(),
});
const pageSchema = z.looseObject({
  data: z.array(z.unknown()),
  paging: z.looseObject({ cursors: z.looseObject({ after: z.string().optional() }).optional(), next: z.string().optional() }).optional(),
});

export function createTemplateSync(deps: TemplateSyncDeps) {
  const doFetch = deps.fetch ?? fetch;
  const base = deps.graphApiUrl.replace(/\/$/, '');
  const pageSize = deps.pageSize ?? 100;
  const maxPages = deps.maxPages ?? 100;
  const log = deps.log.child({ module: 'template-sync' });

  async function page(wabaId: string, accessToken: string, after: string | undefined): Promise<z.infer<typeof pageSchema>> {
    const qs = new URLSearchParams({ fields: 'id,name,language,status,category,components,parameter_format,quality_score,rejected_reason', limit: String(pageSize) });
    if (after) qs.set('after', after);
    let res: Response;
    try {
      res = await doFetch(`${base}/${deps.graphApiVersion}/${encodeURIComponent(wabaId)}/message_templates?${qs}`, {
        headers: { authorization: `Bearer ${accessToken}` },
        signal: AbortSignal.timeout(deps.timeoutMs),
        redirect: 'error',
      });
    } catch {
      throw new AppError('unavailable', 'could not reach the Graph API to read the templates; retry later');
    }
    const json = parseGraphJson(await res.text().catch(() => ''));
    if (!res.ok) {
      const err = readGraphError(res.status, json);
      const code = err.code;
      const message = err.isGraphError ? (err.message ?? '').slice(0, 300) : `HTTP ${res.status}`;
      log.warn({ httpStatus: res.status, code }, 'template sync: the Graph API refused');
      // a 401 is the token whatever the code says; a 5xx or 429 is worth another try whatever the code says
      if (err.kind === 'token_invalid' || res.status === 401) throw new AppError('provider_auth', `the Graph API refused the channel's access token (code ${code ?? res.status}): ${message}`);
      if (err.retryable || res.status >= 500 || res.status === 429) throw new AppError('provider_transient', `the Graph API could not list the templates now (code ${code ?? res.status}); retry later`);
      throw new AppError('provider_permanent', `the Graph API refused to list the templates of WhatsApp Business Account ${wabaId} (code ${code ?? res.status}): ${message}`);
    }
    const parsed = pageSchema.safeParse(json);
    if (!parsed.success) throw new AppError('provider_permanent', 'the Graph API answered the template list without a data array');
    return parsed.data;
  }

  return {
    async sync(tenantId: string, channelId: string): Promise<TemplateSyncResult> {
      const creds = await deps.channels.syncCredentials(tenantId, channelId);
      if (!creds) throw new AppError('not_found', 'channel not found');
      if (creds.platform !== 'whatsapp') throw new AppError('conflict', `a ${creds.platform} channel has no WhatsApp message templates`, undefined, 'not_whatsapp');
      if (!creds.wabaId) {
        throw new AppError('conflict', 'the channel has no WhatsApp Business Account id: set wabaId with PATCH /v1/channels/:channelId first', undefined, 'waba_id_missing');
      }
      const wabaId = creds.wabaId;
      const items: MetaTemplate[] = [];
      let skipped = 0;
      let after: string | undefined;
      let pages = 0;
      for (;;) {
        if (pages >= maxPages) {
          throw new AppError('provider_permanent', `the template list is longer than ${maxPages} pages of ${pageSize}; nothing was changed`, undefined, 'too_many_pages');
        }
        const p = await page(wabaId, creds.accessToken, after);
        pages += 1;
        for (const raw of p.data) {
          const t = templateItemSchema.safeParse(raw);
          if (!t.success) {
            skipped += 1;
            continue;
          }
          const components = normalizeComponents(t.data.components, t.data.parameter_format);
          items.push({
            metaTemplateId: t.data.id,
            name: t.data.name,
            language: t.data.language,
            category: t.data.category,
            status: t.data.status.toUpperCase(),
            body: components.body?.text ?? '',
            components,
            ...(t.data.quality_score?.score ? { qualityScore: t.data.quality_score.score } : {}),
            ...(t.data.rejected_reason && t.data.rejected_reason !== 'NONE' ? { statusReason: t.data.rejected_reason } : {}),
          });
        }
        const next = p.paging?.cursors?.after;
        if (!p.paging?.next || !next || next === after) break;
        after = next;
      }
      const { inserted, updated } = await deps.templates.upsertFromMeta(tenantId, channelId, wabaId, items);
      const markedDeleted = await deps.templates.markMissing(tenantId, wabaId, items.map((i) => i.metaTemplateId));
      log.info({ tenantId, channelId, pages, fetched: items.length, inserted, updated, markedDeleted, skipped }, 'templates synced');
      return { channelId, wabaId, pages, fetched: items.length, inserted, updated, markedDeleted, skipped };
    },
  };
}

export type TemplateSync = ReturnType<typeof createTemplateSync>;
