import { Router } from 'express';
import { z } from 'zod';
import { KNOWLEDGE_FALLBACKS, LEAD_MODES, TEMPLATE_CATEGORIES } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import type { VerifyChannelOwnership } from '../../services/channel-ownership';
import type { ParleyTemporal } from '../../temporal/client';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery as page, validate } from '../middleware/validate';
import { webChatOriginsSchema } from './webchat';
import { LEAD_READERS, MANAGERS, SETUP_READERS, allow } from '../access';
import { optOutSettingsSchema, templateRefSchema } from '../../workflows/lead/policy/schemas';
import { AGENT_TOOLS } from '../../contract/agent-tools';
import { doc } from '../openapi';
import { pageOf } from '../schemas/common';
import { agent, pipeline, template } from '../schemas/setup';
import { leadDetailSchema, leadEventPage, leadMessagePage, leadPage, leadStateSchema, messagePage } from '../schemas/leads';
import { channelSchema, creditBalanceSchema, creditLedgerEntrySchema } from '../schemas/accounts';

const modelName = z.string().trim().min(1).max(200);
/** A WhatsApp Business Account id: digits, like every Meta object id. */
export const wabaIdSchema = z.string().trim().regex(/^\d{5,30}$/, 'must be the numeric WhatsApp Business Account id');
export const createAgentBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  systemPrompt: z.string().min(1).max(20_000),
  model: modelName,
  fallbackModel: modelName.optional().meta({ description: 'The model used when `model` fails' }),
  temperature: z.number().min(0).max(2).optional().meta({ description: 'Default 0.4' }),
  /** Stage name → prompt addition while the lead is in that stage. */
  stagePrompts: z.record(z.string().min(1).max(100), z.string().max(5000)).optional().meta({ description: 'Stage name → text added to the system prompt while the lead is in that stage' }),
  /** Extra fields to extract: name → description. */
  extractionFields: z.record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,63}$/), z.string().max(500)).optional().meta({ description: 'Extra fields the extraction fills: name → description' }),
  /** Phrases that hand the lead to a human. */
  handoffKeywords: z.array(z.string().trim().min(1).max(100)).max(50).optional().meta({ description: 'Phrases that hand the lead to a human' }),
  /** Opt-out (STOP/START): absent = the default phrases of en, hi, es, pt, AI replies continue, no confirmation. */
  optOut: optOutSettingsSchema.optional().meta({ description: 'Opt-out (STOP/START); absent: the default phrases of en, hi, es, pt, AI replies continue, no confirmation' }),
  /** Outbound webhooks: lead.qualified when a lead's score reaches it. */
  qualifiedScore: z.number().int().min(1).max(100).optional().meta({ description: 'The lead score (1–100) at which a lead is qualified: the webhook event lead.qualified fires when an extraction raises a lead to it; absent = none' }),
  /** Knowledge bases the agent retrieves from (the tenant's own). */
  knowledgeBaseIds: z.array(z.uuid()).max(20).optional().meta({ description: "Knowledge bases the agent retrieves passages from (the tenant's own; POST /v1/knowledge-bases)" }),
  tools: z
    .array(z.enum(AGENT_TOOLS))
    .max(AGENT_TOOLS.length)
    .refine((t) => new Set(t).size === t.length, 'each tool once')
    .optional()
    .meta({ description: 'The tools the AI may call in a reply (README "Agent tools"): handoff_to_human, set_stage, schedule_follow_up, cancel_follow_up (offered only while the lead has follow-ups waiting), send_buttons, send_list, search_knowledge (offered only while the agent has knowledgeBaseIds), send_media (offered only while the agent has assets, POST /v1/agents/{agentId}/assets); absent: `["handoff_to_human"]`; `[]`: none' }),
  followUpTemplate: templateRefSchema
    .strict()
    .optional()
    .meta({ description: 'The WhatsApp template a follow-up set by `schedule_follow_up` sends when the 24-hour window is closed by then; absent: such a follow-up is refused (recorded)' }),
  /** When the knowledge bases have nothing relevant (default say_unknown). */
  knowledgeFallback: z.enum(KNOWLEDGE_FALLBACKS).optional().meta({ description: 'When its knowledge bases have nothing relevant to the question: `say_unknown` (default: say it does not know, no guessing), `offer_human` (the same and offer a person), `answer_anyway` (answer from the system prompt alone)' }),
});
const channelCommon = {
  agentId: z.uuid(),
  /** Business-number throughput limit (messages per second); the deployment default when omitted. */
  messagesPerSecond: z.number().int().min(1).max(1000).optional(),
  /** Mark inbound messages read and show the typing indicator while the AI writes (default true). */
  markRead: z.boolean().optional(),
};
const createChannelBody = z.discriminatedUnion('platform', [
  z.strictObject({
    platform: z.literal('whatsapp'),
    phoneNumberId: z.string().trim().regex(/^\d{5,30}$/, 'must be the numeric WhatsApp phone_number_id'),
    displayPhoneNumber: z.string().trim().max(40).optional(),
    accessToken: z.string().min(10).max(2000),
    appSecret: z.string().min(8).max(500).optional(),
    verifyToken: z.string().min(8).max(500),
    /** The WhatsApp Business Account id: needed for the template sync and template webhooks. */
    wabaId: wabaIdSchema.optional(),
    ...channelCommon,
  }),
  z.strictObject({
    platform: z.literal('instagram'),
    /** The Instagram professional account id: the webhook's entry.id and the send API's account. */
    phoneNumberId: z.string().trim().regex(/^\d{5,30}$/, 'must be the numeric Instagram account id'),
    displayPhoneNumber: z.string().trim().max(100).optional(),
    accessToken: z.string().min(10).max(2000),
    appSecret: z.string().min(8).max(500).optional(),
    verifyToken: z.string().min(8).max(500),
    ...channelCommon,
  }),
  z.strictObject({
    platform: z.literal('webchat'),
    /** A display name for the widget's header. */
    displayPhoneNumber: z.string().trim().max(100).optional(),
    /** Origins whose pages may use the widget (absent = any). */
    allowedOrigins: webChatOriginsSchema.optional(),
    ...channelCommon,
  }),
]);
const createTemplateBody = z.strictObject({
  name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'lowercase letters, digits and underscores, as Meta names templates'),
  language: z.string().regex(/^[a-z]{2,3}(_[A-Z]{2})?$/, 'a Meta language code such as en or en_US'),
  category: z.enum(TEMPLATE_CATEGORIES),
  body: z.string().min(1).max(1024).meta({ description: 'The text, with positional variables {{1}}, {{2}}, ...' }),
  approved: z.boolean().default(false).meta({ description: 'Whether it may be sent (set by hand for a local template)' }),
});
const createPipelineBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  stages: z
    .array(z.string().trim().min(1).max(100))
    .min(1)
    .max(30)
    .refine((a) => new Set(a).size === a.length, 'stage names must be unique')
    .meta({ description: 'Stage names, unique, in order' }),
});

function leadIdOr404(raw: unknown): string {
  const r = z.uuid().safeParse(raw);
  if (!r.success) throw new AppError('not_found', 'lead not found');
  return r.data;
}

/** An ISO 8601 time with its zone (a filter's lower bound). */
const isoInstant = z.iso.datetime({ offset: true });
/** A query flag: `true` or `false`. */
const queryFlag = z.enum(['true', 'false']).transform((v) => v === 'true');

/** GET /v1/leads filters (services/leads.ts `list` says what each one matches). */
const leadListQuery = page.extend({
  stage: z.string().trim().min(1).max(100).optional(),
  mode: z.enum(LEAD_MODES).optional(),
  channelId: z.uuid().optional(),
  minScore: z.coerce.number().int().min(0).max(100).optional(),
  needsAttention: queryFlag.optional(),
  updatedSince: isoInstant.optional(),
  /** A prefix of the name, phone number, contact id or username. */
  q: z.string().trim().min(1).max(100).optional(),
});

/** GET /v1/messages filters. */
const messageListQuery = page.extend({
  direction: z.enum(['inbound', 'outbound']).optional(),
  status: z.string().trim().min(1).max(40).optional(),
  since: isoInstant.optional(),
});

/** Routes authenticated by a tenant API key; every read is scoped to that tenant. */
export function createTenantRouter(deps: { services: Services; temporal: ParleyTemporal; verifyChannel?: VerifyChannelOwnership }): Router {
  const { services } = deps;
  const r = Router();
  const auth = tenantAuth(services); // tenant key, then the tenant's API rate limit
  for (const p of ['/v1/agents', '/v1/channels', '/v1/credits', '/v1/leads', '/v1/messages', '/v1/templates', '/v1/pipelines']) r.use(p, auth);

  r.post('/v1/agents', allow(...MANAGERS), validate({ body: createAgentBody }), doc({ summary: 'Create an agent', description: 'Creates the agent at version 1. Assign it to a channel with POST or PATCH /v1/channels.', responses: { 201: agent } }), async (_req, res) => {
    await services.knowledge.assertKnowledgeBases(res.locals.tenantId, res.locals.body.knowledgeBaseIds ?? []);
    res.status(201).json(await services.agents.create(res.locals.tenantId, res.locals.body, { createdBy: (res.locals.apiKey as { keyId: string }).keyId }));
  });
  r.get('/v1/agents', allow(...SETUP_READERS), validate({ query: page }), doc({ summary: 'List agents', description: 'Oldest first.', responses: { 200: pageOf(agent) } }), async (_req, res) => {
    res.json(await services.agents.list(res.locals.tenantId, res.locals.query));
  });

  r.post(
    '/v1/channels',
    allow(...MANAGERS),
    validate({ body: createChannelBody }),
    doc({
      summary: 'Register a channel',
      description:
        'A WhatsApp number, an Instagram professional account or a web chat widget, answered by one of the tenant\'s agents. For WhatsApp and Instagram the access token must be able to read the id through the Graph API (no registering another business\'s number): an id the token cannot read → 409 `channel_not_owned`, a token Meta refuses → 422 `access_token_invalid`, the Graph API unreachable → 503. An id already registered → 409. Secrets are stored encrypted and never returned; a web chat channel answers its `widgetKey`.',
      responses: { 201: channelSchema },
    }),
    async (_req, res) => {
      const body = res.locals.body as z.infer<typeof createChannelBody>;
      // only an id the tenant's own token can read may be registered (no squatting on another business's number)
      if (deps.verifyChannel && body.platform !== 'webchat') await deps.verifyChannel({ platform: body.platform, accountId: body.phoneNumberId, accessToken: body.accessToken });
      res.status(201).json(await services.channels.create(res.locals.tenantId, res.locals.body));
    },
  );
  r.get('/v1/channels', allow(...SETUP_READERS), validate({ query: page }), doc({ summary: 'List channels', description: 'Oldest first.', responses: { 200: pageOf(channelSchema) } }), async (_req, res) => {
    res.json(await services.channels.list(res.locals.tenantId, res.locals.query));
  });

  r.post('/v1/templates', allow(...MANAGERS), validate({ body: createTemplateBody }), doc({ summary: 'Create a local template', description: 'A body-only template approved by hand (`approved`, default false); a template synced from Meta (POST /v1/channels/{channelId}/templates/sync) replaces a local one of the same name and language. 409 when the name and language exist.', responses: { 201: template } }), async (_req, res) => {
    res.status(201).json(await services.templates.create(res.locals.tenantId, res.locals.body));
  });
  r.get('/v1/templates', allow(...SETUP_READERS), validate({ query: page }), doc({ summary: 'List templates', description: 'By name, then language; local and synced templates.', responses: { 200: pageOf(template) } }), async (_req, res) => {
    res.json(await services.templates.list(res.locals.tenantId, res.locals.query));
  });
  r.post('/v1/pipelines', allow(...MANAGERS), validate({ body: createPipelineBody }), doc({ summary: 'Create a pipeline', description: 'A custom pipeline with its stages in order. 409 when the tenant has a pipeline of that name.', responses: { 201: pipeline } }), async (_req, res) => {
    res.status(201).json(await services.pipelines.create(res.locals.tenantId, res.locals.body));
  });
  r.get('/v1/pipelines', allow(...SETUP_READERS), validate({ query: page }), doc({ summary: 'List pipelines', description: 'Oldest first (the default pipeline first), each with its stages in order.', responses: { 200: pageOf(pipeline) } }), async (_req, res) => {
    res.json(await services.pipelines.list(res.locals.tenantId, res.locals.query));
  });

  r.get('/v1/credits', allow(...SETUP_READERS), doc({ summary: "The tenant's credit balance", description: 'A reply reserves its price when it is written (taken from `balance`, counted in `reserved`) and is charged on delivery, or given back.', responses: { 200: creditBalanceSchema } }), async (_req, res) => {
    res.json(await services.credits.balance(res.locals.tenantId));
  });
  r.get(
    '/v1/credits/ledger',
    allow(...SETUP_READERS),
    validate({ query: page }),
    doc({ summary: 'List credit ledger entries', description: 'Newest first: top-ups and debits (a delivered reply is referenced `message:{outboundMessageId}`).', responses: { 200: pageOf(creditLedgerEntrySchema) } }),
    async (_req, res) => {
      res.json(await services.credits.ledger(res.locals.tenantId, res.locals.query));
    },
  );

  r.get('/v1/leads', allow(...LEAD_READERS), validate({ query: leadListQuery }), doc({ summary: 'List leads', description: 'Newest first. Filters combine (all must hold); `needsAttention`: handed to a human, blocked for credit, or with an open dead letter.', responses: { 200: leadPage } }), async (_req, res) => {
    res.json(await services.leads.list(res.locals.tenantId, res.locals.query));
  });
  r.get('/v1/leads/:leadId/events', allow(...LEAD_READERS), validate({ query: page }), doc({ summary: "List a lead's events", description: 'Newest first.', responses: { 200: leadEventPage } }), async (req, res) => {
    const leadId = leadIdOr404(req.params.leadId);
    if (!(await services.leads.get(res.locals.tenantId, leadId))) throw new AppError('not_found', 'lead not found');
    res.json(await services.leads.eventPage(res.locals.tenantId, leadId, res.locals.query));
  });
  r.get('/v1/messages', allow(...LEAD_READERS), validate({ query: messageListQuery }), doc({ summary: "List the tenant's messages across leads", description: 'Newest first, filtered by direction, status and creation time.', responses: { 200: messagePage } }), async (_req, res) => {
    res.json(await services.leads.tenantMessages(res.locals.tenantId, res.locals.query));
  });
  r.get('/v1/leads/:leadId', allow(...LEAD_READERS), doc({ summary: 'Get a lead', description: 'With `optedOut` (on the tenant\'s suppression list) and its 20 newest events.', responses: { 200: leadDetailSchema } }), async (req, res) => {
    const lead = await services.leads.get(res.locals.tenantId, leadIdOr404(req.params.leadId));
    if (!lead) throw new AppError('not_found', 'lead not found');
    const [events, suppression] = await Promise.all([
      services.leads.events(res.locals.tenantId, lead.id, 20),
      services.suppressions.find({ tenantId: res.locals.tenantId, channelAccountId: lead.channelAccountId, contactId: lead.contactId }),
    ]);
    // optedOut: on the tenant's suppression list (a STOP on any of its channels, or the API)
    res.json({ ...lead, optedOut: suppression !== undefined, events });
  });
  r.get('/v1/leads/:leadId/state', allow(...LEAD_READERS), doc({ summary: "Get a lead's live conversation state", description: 'Asks the lead\'s conversation workflow (a Temporal query): mode, stage, sequence, counters, parked and queued sends. 404 when the workflow no longer exists.', responses: { 200: leadStateSchema } }), async (req, res) => {
    const lead = await services.leads.get(res.locals.tenantId, leadIdOr404(req.params.leadId));
    if (!lead) throw new AppError('not_found', 'lead not found');
    const state = await deps.temporal.leadState(lead.workflowId);
    if (!state) throw new AppError('not_found', 'conversation workflow not found');
    res.json(state);
  });
  r.get('/v1/leads/:leadId/messages', allow(...LEAD_READERS), validate({ query: page }), doc({ summary: "List a lead's messages", description: 'Newest first, in transcript order.', responses: { 200: leadMessagePage } }), async (req, res) => {
    const leadId = leadIdOr404(req.params.leadId);
    const lead = await services.leads.get(res.locals.tenantId, leadId);
    if (!lead) throw new AppError('not_found', 'lead not found');
    res.json(await services.leads.messages(res.locals.tenantId, leadId, res.locals.query));
  });
  return r;
}
