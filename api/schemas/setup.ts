/**
 * The documented answers of the setup routes (api/openapi.ts): agents and their versions,
 * pipelines and stages, sequences, their versions and enrolment rules, templates and the
 * template sync. Each schema is the wire form of what the service presents (services/agents.ts
 * `present`, services/pipelines.ts `withStages`, services/sequences.ts `present`/`presentRule`,
 * services/templates.ts `present`, services/template-sync.ts `TemplateSyncResult`).
 */
import { z } from 'zod';
import { KNOWLEDGE_FALLBACKS, SEQUENCE_STEP_KINDS, STOP_CONDITIONS, TEMPLATE_CATEGORIES } from '../../contract/vocabulary';
import { OPT_OUT_LANGUAGES } from '../../workflows/lead/policy/opt-out';
import { jsonObject, timestamp, uuid } from './common';
import { AGENT_TOOLS } from '../../contract/agent-tools';

const createdBy = uuid.nullable().meta({ description: 'The API key that made this version (null: made before versions were kept, or not through the API)' });

const templateRef = z
  .strictObject({
    name: z.string(),
    language: z.string(),
    variables: z.array(z.string()).optional().meta({ description: 'Body parameters, in order' }),
    header: z
      .strictObject({
        text: z.string().optional(),
        media: z.strictObject({ link: z.string().optional(), id: z.string().optional(), filename: z.string().optional() }).optional(),
        location: z.strictObject({ latitude: z.number(), longitude: z.number(), name: z.string().optional(), address: z.string().optional() }).optional(),
      })
      .optional()
      .meta({ description: "The header's parameter: text, media (link or id) or a location" }),
    buttons: z.array(z.strictObject({ index: z.number().int(), value: z.string() })).optional().meta({ description: 'Button parameters by button index' }),
  })
  .meta({ id: 'SetupTemplateRef', description: 'A WhatsApp template to send, with its parameters' });

// ---- agents

export const optOutSettings = z
  .strictObject({
    languages: z.array(z.enum(OPT_OUT_LANGUAGES)).optional().meta({ description: 'Languages whose default STOP/START phrases apply (absent: all four; []: only the agent\'s own)' }),
    keywords: z
      .record(z.string(), z.strictObject({ stop: z.array(z.string()).optional(), start: z.array(z.string()).optional() }))
      .optional()
      .meta({ description: 'Extra phrases per language code, e.g. `{ "fr": { "stop": ["ARRÊT"], "start": ["COMMENCER"] } }`' }),
    confirmationText: z.string().optional().meta({ description: 'Sent once when a contact opts out' }),
    replyAfterOptOut: z.boolean().optional().meta({ description: 'Whether the AI still answers a suppressed contact who writes again (absent: true)' }),
  })
  .meta({ id: 'SetupOptOutSettings', description: "An agent's opt-out (STOP/START) settings" });

/** The fields every agent version records. */
const agentFields = {
  name: z.string(),
  systemPrompt: z.string(),
  model: z.string(),
  fallbackModel: z.string().nullable().meta({ description: 'The model used when `model` fails (null: none)' }),
  temperature: z.number(),
  stagePrompts: z.record(z.string(), z.string()).meta({ description: 'Stage name → text added to the system prompt while the lead is in that stage' }),
  extractionFields: z.record(z.string(), z.string()).meta({ description: 'Extra fields the extraction fills: name → description' }),
  handoffKeywords: z.array(z.string()).meta({ description: 'Phrases that hand the lead to a human' }),
  optOut: optOutSettings.nullable().meta({ description: 'null: the default opt-out settings (en, hi, es, pt phrases; AI replies continue; no confirmation)' }),
  qualifiedScore: z.number().int().nullable().meta({ description: 'The lead score at which a lead is qualified (webhook event lead.qualified); null: none' }),
  knowledgeBaseIds: z.array(uuid).meta({ description: 'Knowledge bases the agent retrieves passages from' }),
  tools: z.array(z.enum(AGENT_TOOLS)).nullable().meta({ description: 'The tools the AI may call in a reply; null: the default (`handoff_to_human`). `search_knowledge` is offered only while the agent has knowledge bases, `send_media` only while it has assets, `cancel_follow_up` only while the lead has follow-ups waiting (POST /v1/agents/{agentId}/assets)' }),
  followUpTemplate: templateRef.nullable().meta({ description: 'The template a scheduled follow-up sends outside the 24-hour window; null: refused then' }),
  knowledgeFallback: z.enum(KNOWLEDGE_FALLBACKS).meta({ description: 'When its knowledge bases have nothing relevant to the question: `say_unknown` (say it does not know, no guessing), `offer_human` (the same and offer a person), `answer_anyway` (answer from the system prompt alone)' }),
};

export const agent = z
  .strictObject({
    id: uuid,
    ...agentFields,
    version: z.number().int().min(1).meta({ description: 'The current version (every change makes a new one)' }),
    createdAt: timestamp,
  })
  .meta({ id: 'Agent', description: 'An AI agent: its prompt, models and behaviour, as of its current version' });

export const agentVersion = z
  .strictObject({
    agentId: uuid,
    version: z.number().int().min(1),
    ...agentFields,
    restoredFrom: z.number().int().nullable().meta({ description: 'The version this one restored (null: made by a create or a change)' }),
    createdBy,
    createdAt: timestamp,
  })
  .meta({ id: 'AgentVersion', description: "One version of an agent's settings" });

// ---- pipelines

export const pipelineStage = z
  .strictObject({ id: uuid, name: z.string(), position: z.number().int().min(0).meta({ description: '0 = first' }) })
  .meta({ id: 'PipelineStage', description: 'A stage of a pipeline (a lead\'s `stage` holds its name)' });

export const pipeline = z
  .strictObject({
    id: uuid,
    name: z.string(),
    isDefault: z.boolean().meta({ description: 'The pipeline every tenant starts with; its stage New is where new leads start' }),
    stages: z.array(pipelineStage).meta({ description: 'In order' }),
    createdAt: timestamp,
  })
  .meta({ id: 'Pipeline', description: 'A sales pipeline with its ordered stages' });

export const movedLeads = z
  .strictObject({
    from: z.string().meta({ description: 'The stage the leads were in' }),
    to: z.string().meta({ description: 'The stage they are in now' }),
    leads: z.number().int().min(0).meta({ description: 'How many leads moved (in the database)' }),
    workflowsUpdated: z.number().int().min(0).meta({ description: 'Conversation workflows told of the new stage' }),
    workflowsNotRunning: z.number().int().min(0).meta({ description: 'Leads without a running workflow (a new run reads the stage from the database)' }),
    workflowsFailed: z.array(z.strictObject({ leadId: uuid, reason: z.string() })).meta({ description: 'Workflows that could not be told (the database already has the new stage)' }),
  })
  .meta({ id: 'SetupMovedLeads', description: 'Leads whose stage changed with a stage rename or removal, and what happened to their workflows' });

export const stageAdded = z.strictObject({ pipeline, stage: pipelineStage }).meta({ id: 'SetupStageAdded' });
export const stageChanged = z
  .strictObject({ pipeline, stage: pipelineStage, moved: movedLeads.optional().meta({ description: 'Present when a rename moved leads' }) })
  .meta({ id: 'SetupStageChanged' });
export const stageRemoved = z
  .strictObject({ pipeline, removed: pipelineStage, moved: movedLeads.optional().meta({ description: 'Present when leads were moved to `moveTo`' }) })
  .meta({ id: 'SetupStageRemoved' });

// ---- sequences

export const sequenceStep = z
  .strictObject({
    delayMs: z.number().int().min(0).meta({ description: 'Delay after the previous step was sent (after enrolment for the first step)' }),
    kind: z.enum(SEQUENCE_STEP_KINDS),
    template: templateRef.optional().meta({ description: 'Required for `template`; the fallback outside the 24-hour window for `ai` and `text`' }),
    text: z.string().optional().meta({ description: 'The message of a `text` step' }),
    aiInstruction: z.string().optional().meta({ description: 'What the AI should write for an `ai` step' }),
    message: jsonObject.optional().meta({ description: "A `rich` step's message (`{ kind, interactive | media | location | reaction }`, contract/rich.ts), degraded to the lead's channel when sent" }),
    sendWindow: z
      .strictObject({ days: z.array(z.number().int().min(0).max(6)), start: z.string(), end: z.string() })
      .optional()
      .meta({ description: "Quiet hours in the lead's time zone (days 0 = Sunday; local HH:MM start inclusive, end exclusive); absent: any time" }),
  })
  .meta({ id: 'SequenceStep', description: 'One step of a follow-up sequence' });

const sequenceFields = {
  name: z.string(),
  steps: z.array(sequenceStep),
  stopOn: z.array(z.enum(STOP_CONDITIONS)).meta({ description: 'Events that stop the sequence for a lead' }),
};

export const sequence = z
  .strictObject({
    id: uuid,
    version: z.number().int().min(1).meta({ description: 'The current version: new enrolments get it; enrolled leads keep theirs until they finish or are reset' }),
    ...sequenceFields,
    archived: z.boolean().meta({ description: 'No new enrolments (manual or by a rule); enrolled leads go on' }),
    archivedAt: timestamp.nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'Sequence', description: 'A follow-up sequence, as of its current version' });

export const sequenceVersion = z
  .strictObject({ sequenceId: uuid, version: z.number().int().min(1), ...sequenceFields, createdBy, createdAt: timestamp })
  .meta({ id: 'SequenceVersion', description: "One version of a sequence's definition" });

export const enrollmentRule = z
  .strictObject({
    id: uuid,
    sequenceId: uuid,
    agentId: uuid.nullable().meta({ description: 'Only leads of this agent (null: any agent)' }),
    channelAccountId: uuid.nullable().meta({ description: 'Only leads on this channel (null: any channel)' }),
    trigger: z.enum(['new_lead']),
    createdAt: timestamp,
  })
  .meta({ id: 'EnrollmentRule', description: 'A new lead matching the rule is enrolled in the sequence (the oldest matching rule of a sequence not archived wins)' });

// ---- templates

const templateButton = z
  .strictObject({
    index: z.number().int().min(0),
    type: z.string().meta({ description: "Meta's button type as sent: QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, ..." }),
    text: z.string().optional(),
    url: z.string().optional(),
    phoneNumber: z.string().optional(),
    otpType: z.string().optional(),
    parameter: z
      .enum(['none', 'url_suffix', 'coupon_code', 'otp_code', 'payload'])
      .meta({ description: 'What a send gives for this button: nothing, a URL suffix, a coupon code, a one-time code (required), or a quick-reply payload (optional)' }),
  })
  .meta({ id: 'SetupTemplateButton' });

export const templateComponents = z
  .strictObject({
    header: z
      .strictObject({ format: z.string().meta({ description: 'TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION (others as Meta sent them)' }), text: z.string().optional(), variables: z.number().int().min(0), names: z.array(z.string()).optional() })
      .optional(),
    body: z.strictObject({ text: z.string(), variables: z.number().int().min(0), names: z.array(z.string()).optional().meta({ description: 'Named parameters, in order (templates with named parameters)' }) }).optional(),
    footer: z.strictObject({ text: z.string() }).optional(),
    buttons: z.array(templateButton),
  })
  .meta({ id: 'TemplateComponent', description: "A template's components (header, body, footer, buttons) and the parameters a send must give" });

export const template = z
  .strictObject({
    id: uuid,
    name: z.string(),
    language: z.string(),
    category: z.enum(TEMPLATE_CATEGORIES),
    source: z.enum(['local', 'meta']).meta({ description: "local: created through the API, approved by hand; meta: synced from the WhatsApp Business Account, its status is Meta's" }),
    status: z.string().meta({ description: "Meta's status (APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...; DELETED when a sync no longer lists it); a local template: APPROVED or PENDING" }),
    approved: z.boolean().meta({ description: 'Whether it can be sent' }),
    body: z.string(),
    variables: z.number().int().min(0).meta({ description: 'How many body parameters a send gives' }),
    components: templateComponents,
    channelId: uuid.nullable().meta({ description: 'The channel it was synced through (null: local)' }),
    wabaId: z.string().nullable(),
    metaTemplateId: z.string().nullable(),
    qualityScore: z.string().nullable().meta({ description: "Meta's quality score (GREEN, YELLOW, RED, UNKNOWN)" }),
    statusReason: z.string().nullable().meta({ description: 'Why Meta last changed its status (rejection or pause reason)' }),
    events: z.record(z.string(), jsonObject).meta({ description: "The last template webhook applied per field (message_template_status_update, ...), with Meta's time `at`" }),
    syncedAt: timestamp.nullable(),
    updatedAt: timestamp.nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'Template', description: 'A WhatsApp message template of the tenant' });

export const templateSyncResult = z
  .strictObject({
    channelId: uuid,
    wabaId: z.string(),
    pages: z.number().int().min(0),
    fetched: z.number().int().min(0).meta({ description: 'Templates Meta listed' }),
    inserted: z.number().int().min(0),
    updated: z.number().int().min(0),
    markedDeleted: z.number().int().min(0).meta({ description: 'Synced templates Meta no longer lists, now DELETED' }),
    skipped: z.number().int().min(0).meta({ description: "Items of Meta's answer that were not templates (no name, language or id)" }),
  })
  .meta({ id: 'TemplateSyncResult', description: 'What a template sync did' });

// ---- shared

export const setupDeleted = z.strictObject({ id: uuid, deleted: z.literal(true) }).meta({ id: 'SetupDeleted', description: 'What was deleted' });
