/**
 * The documented answers of the lead routes (api/routes/tenant.ts, engine.ts, extractions.ts):
 * leads, their events, messages, extractions and the conversation workflow's state, in their
 * JSON wire form (services/leads.ts and services/extractions.ts present them; the lead
 * workflow's state query and updates are in workflows/lead/definitions.ts and contract/messages.ts).
 */
import { z } from 'zod';
import { CHANNELS, LEAD_MODES, PARKED_KINDS, SEQUENCE_STEP_KINDS, STOP_CONDITIONS } from '../../contract/vocabulary';
import { jsonObject, pageOf, timestamp, uuid } from './common';

// ------------------------------------------------------------------------------ leads

/** services/leads.ts presentLead */
const leadFields = {
  id: uuid,
  channelAccountId: uuid.meta({ description: 'The channel account (number, Instagram account, web chat widget) the lead writes to' }),
  channel: z.enum(CHANNELS),
  contactId: z.string().meta({ description: "The contact on that channel: WhatsApp wa_id or BSUID (the first form seen), Instagram IGSID, web chat `wv_…` id" }),
  name: z.string().nullable(),
  phone: z.string().nullable().meta({ description: 'WhatsApp: the phone number as last seen (a username user may have none)' }),
  bsuid: z.string().nullable().meta({ description: 'WhatsApp: the business-scoped user id as last seen' }),
  parentBsuid: z.string().nullable(),
  username: z.string().nullable().meta({ description: 'WhatsApp username (display only: users change it)' }),
  stage: z.string().meta({ description: 'The pipeline stage (`New` for a new lead)' }),
  mode: z.enum(LEAD_MODES).meta({ description: 'Who answers: ai, human (handed off), paused, closed' }),
  blocked: z.boolean().meta({ description: "True while the tenant has no credit for this lead's next reply" }),
  score: z.number().int().nullable().meta({ description: 'The latest extraction\'s lead score (`GET /v1/leads?minScore=` filters on it); null before the first extraction' }),
  timeZone: z.string().nullable().meta({ description: 'IANA time zone used for send windows (from the phone number\'s country when known)' }),
  workflowId: z.string().meta({ description: "The lead's conversation workflow in Temporal" }),
  lastInboundAt: timestamp.nullable(),
  lastOutboundAt: timestamp.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
};

export const leadSchema = z.strictObject(leadFields).meta({ id: 'Lead', description: 'A conversation with one contact on one channel account' });

/** A lead event (services/leads.ts eventPage). */
export const leadEventSchema = z
  .strictObject({
    id: uuid,
    type: z.string().meta({ description: 'e.g. stage_changed, mode_changed, sequence_step, extraction_updated, opted_out, delivery_failed' }),
    data: jsonObject.nullable().meta({ description: "The event's facts (their fields depend on the type)" }),
    createdAt: timestamp,
  })
  .meta({ id: 'LeadEvent', description: "Something that happened to a lead (its conversation workflow's decisions, opt-outs, extractions)" });

export const leadDetailSchema = z
  .strictObject({
    ...leadFields,
    optedOut: z.boolean().meta({ description: "On the tenant's suppression list (a STOP on any of its channels, or the API)" }),
    events: z.array(leadEventSchema).meta({ description: 'The 20 newest events, newest first (all of them: GET /v1/leads/{leadId}/events)' }),
  })
  .meta({ id: 'LeadDetail', description: 'A lead with its opt-out state and latest events' });

export const leadPage = pageOf(leadSchema);
export const leadEventPage = pageOf(leadEventSchema);

// ------------------------------------------------------------------------------ messages

const direction = z.enum(['inbound', 'outbound']);
const messageStatus = z.string().meta({ description: 'inbound: received; outbound: pending → sent → delivered → read (played), or failed' });
const messageType = z.string().meta({ description: 'inbound: the normalized message type (text, image, audio, location, …); outbound: text, template, or a rich kind (interactive, media, location, reaction)' });
const messageError = z.unknown().nullable().meta({ description: "A failed send's error, as the provider or the worker reported it; null otherwise" });

/** A knowledge-base passage a reply was written from (activities/llm/knowledge-context.ts KnowledgeUsed). */
const knowledgeUsedSchema = z
  .strictObject({
    chunkId: uuid,
    documentId: uuid,
    title: z.string().meta({ description: "The document's title" }),
    score: z.number().meta({ description: 'The fused (reciprocal rank) retrieval score' }),
  })
  .meta({ id: 'LeadMessageKnowledge', description: 'A knowledge-base passage a reply was written from' });

/** A message of one lead's transcript (services/leads.ts presentMessage). */
export const leadMessageSchema = z
  .strictObject({
    id: uuid,
    direction,
    providerMessageId: z.string().nullable().meta({ description: "The provider's id (WhatsApp wamid); null until an outbound message is sent" }),
    type: messageType,
    body: z.string().meta({ description: 'The text, or a readable rendering of other types ("[image] caption", numbered buttons)' }),
    content: jsonObject.nullable().meta({ description: 'An outbound rich message (type interactive, media, location, reaction) as it went out on the channel: `{ kind, interactive | media | location | reaction }`; null otherwise' }),
    knowledge: z.array(knowledgeUsedSchema).meta({ description: "An AI reply: the knowledge-base passages its prompt carried, best first (the agent's `knowledgeBaseIds`); empty otherwise" }),
    status: messageStatus,
    error: messageError,
    sentAt: timestamp.nullable().meta({ description: 'When the contact sent it (inbound) or we sent it (outbound)' }),
    createdAt: timestamp,
  })
  .meta({ id: 'LeadMessage', description: "A message of a lead's conversation" });

/** A message of any lead of the tenant (services/leads.ts tenantMessages). */
export const messageSchema = z
  .strictObject({
    id: uuid,
    leadId: uuid,
    direction,
    type: messageType,
    body: z.string(),
    status: messageStatus,
    providerMessageId: z.string().nullable(),
    error: messageError,
    sentAt: timestamp.nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'Message', description: 'A message of one of the tenant\'s leads' });

export const leadMessagePage = pageOf(leadMessageSchema);
export const messagePage = pageOf(messageSchema);

// ------------------------------------------------------------------------------ extractions

const extractedText = z.string().nullable();

/** services/extractions.ts ExtractionData */
const extractionData = z.strictObject({
  name: extractedText,
  email: extractedText,
  company: extractedText,
  budget: extractedText,
  authority: extractedText,
  need: extractedText,
  timeline: extractedText,
  fields: z.record(z.string(), extractedText).meta({ description: "The agent's own extraction fields (null = not stated)" }),
});

export const extractionSchema = z
  .strictObject({
    id: uuid,
    leadId: uuid,
    version: z.number().int().meta({ description: "1, 2, …: a new version only when the lead's data changed" }),
    data: extractionData.meta({ description: 'The standard fields (null = not stated) and the agent-defined ones' }),
    score: z.number().int().nullable().meta({ description: "The lead's score (0..100) after this extraction" }),
    model: z.string().nullable().meta({ description: 'The LLM model that extracted it' }),
    createdAt: timestamp,
  })
  .meta({ id: 'Extraction', description: 'One version of the structured data extracted from a conversation' });

export const extractionPage = pageOf(extractionSchema);

// ------------------------------------------------------------------------------ the conversation workflow

/** contract/messages.ts SequenceCursor */
export const leadSequenceCursorSchema = z
  .strictObject({
    sequenceId: z.string(),
    stepIndex: z.number().int().meta({ description: 'The next step to send (0-based); equals the number of steps once completed' }),
    status: z.enum(['active', 'paused', 'stopped', 'completed']),
    dueAt: timestamp.optional().meta({ description: 'When the current step is due; present while active' }),
    remainingMs: z.number().optional().meta({ description: 'The delay left; present while paused' }),
    stopReason: z.string().optional().meta({ description: 'Why it stopped; present while stopped' }),
    enrolledAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'LeadSequenceCursor', description: 'Where a lead is in its follow-up sequence' });

const templateRef = z.strictObject({
  name: z.string(),
  language: z.string(),
  variables: z.array(z.string()).optional(),
  header: z
    .strictObject({
      text: z.string().optional(),
      media: z.strictObject({ link: z.string().optional(), id: z.string().optional(), filename: z.string().optional() }).optional(),
      location: z.strictObject({ latitude: z.number(), longitude: z.number(), name: z.string().optional(), address: z.string().optional() }).optional(),
    })
    .optional(),
  buttons: z.array(z.strictObject({ index: z.number().int(), value: z.string() })).optional(),
});

const sequenceStep = z.strictObject({
  delayMs: z.number().int(),
  kind: z.enum(SEQUENCE_STEP_KINDS),
  template: templateRef.optional(),
  text: z.string().optional(),
  aiInstruction: z.string().optional(),
  message: jsonObject.optional().meta({ description: "A `rich` step's message (contract/rich.ts)" }),
  sendWindow: z.strictObject({ days: z.array(z.number().int()), start: z.string(), end: z.string() }).optional(),
});

const outboundWhat = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('text'), text: z.string() }),
  z.strictObject({
    kind: z.literal('ai'),
    instruction: z.string().optional(),
    maxWords: z.number().optional(),
    avoidRepeats: z.boolean().optional(),
    llmPurpose: z.string().optional(),
    allowHandoff: z.boolean().optional(),
  }),
  z.strictObject({ kind: z.literal('template'), template: templateRef }),
  z.strictObject({ kind: z.literal('rich'), message: jsonObject.meta({ description: 'A rich message (contract/rich.ts)' }) }),
]);

/** contract/messages.ts ParkedOperation */
const parkedOperation = z.strictObject({
  id: z.string(),
  kind: z.enum(PARKED_KINDS),
  purpose: z.string(),
  what: outboundWhat.optional(),
  send: z
    .strictObject({
      plan: z.union([z.strictObject({ action: z.literal('free_form') }), z.strictObject({ action: z.literal('template'), template: templateRef })]),
      text: z.string(),
      outboundMessageId: z.string(),
      reference: z.string(),
      humanAgent: z.boolean().optional(),
      rich: jsonObject.optional().meta({ description: 'The rich message as the channel sends it (`text` is its rendering)' }),
      knowledge: z.array(knowledgeUsedSchema).optional().meta({ description: 'The knowledge-base passages the AI text was written from' }),
    })
    .optional(),
  fallbackTemplate: templateRef.optional(),
  byBot: z.boolean(),
  parkedAt: timestamp,
  retryAt: timestamp.optional(),
  error: z.strictObject({ type: z.string().optional(), message: z.string() }),
  attempts: z.number().int(),
});

const parkedRef = z.strictObject({ id: z.string(), kind: z.enum(PARKED_KINDS), parkedAt: timestamp });

/** workflows/lead/definitions.ts LeadStateSnapshot (the workflow's `state` query). */
export const leadStateSchema = z
  .strictObject({
    workflowId: z.string(),
    tenantId: uuid,
    channelAccountId: uuid,
    channel: z.enum(CHANNELS),
    contactId: z.string(),
    leadId: uuid.optional().meta({ description: 'Absent until the first message is recorded' }),
    stage: z.string(),
    mode: z.enum(LEAD_MODES),
    blocked: z.boolean(),
    lastInboundAt: timestamp.optional(),
    lastOutboundAt: timestamp.optional(),
    seenInboundIds: z.array(z.string()).meta({ description: 'The most recent inbound provider ids (dedup), oldest first' }),
    counters: z
      .strictObject({
        inbound: z.number().int(),
        duplicates: z.number().int(),
        turns: z.number().int(),
        replies: z.number().int(),
        failedReplies: z.number().int(),
        blockedTurns: z.number().int(),
        runs: z.number().int(),
      })
      .meta({ description: 'Totals over the life of the conversation' }),
    timeZone: z.string().optional().meta({ description: "The lead's IANA time zone (sequence send windows)" }),
    lastOutboundByBot: z.boolean().optional(),
    lastHandbackAt: timestamp.optional(),
    handoffKeywords: z.array(z.string()).optional(),
    sequence: z.strictObject({
      def: z.strictObject({ id: z.string(), version: z.number().int().optional(), name: z.string(), steps: z.array(sequenceStep), stopOn: z.array(z.enum(STOP_CONDITIONS)) }),
      cursor: leadSequenceCursorSchema,
    }).optional().meta({ description: "The lead's follow-up sequence (the version it was enrolled with) and where it is in it" }),
    inboxRecorded: z.strictObject({ count: z.number().int(), lastSentAt: z.string() }).optional(),
    inboxFirstAt: timestamp.optional(),
    inboxLastAt: timestamp.optional(),
    outbox: z
      .array(
        z.strictObject({
          requestId: z.string(),
          kind: z.enum(['text', 'template', 'rich']),
          text: z.string().optional(),
          template: templateRef.optional(),
          message: jsonObject.optional().meta({ description: 'A rich message (contract/rich.ts)' }),
          source: z.enum(['manual', 'api']),
        }),
      )
      .optional()
      .meta({ description: 'Manual messages and templates waiting to be sent (e.g. behind an open circuit breaker)' }),
    bumpsSent: z.number().int().optional(),
    lastBumpAt: timestamp.optional(),
    recentBotMessages: z.array(z.string()).optional(),
    recentMessages: z
      .array(z.strictObject({ from: z.enum(['lead', 'bot', 'human']), at: timestamp, text: z.string() }))
      .optional()
      .meta({ description: "The conversation's last few messages, each cut to 200 characters (the Web UI's current details show them; GET /v1/leads/{leadId}/messages has the transcript)" }),
    extractionDueAt: timestamp.optional().meta({ description: 'When the next extraction is due' }),
    score: z.number().optional(),
    deadLetters: z
      .array(z.union([parkedRef, parkedOperation]))
      .optional()
      .meta({ description: 'Operations parked as dead letters (ids; a conversation started before ids-only keeps whole operations): GET /v1/dead-letters has them' }),
    deferred: z.array(parkedOperation).optional().meta({ description: 'Sends waiting for a later attempt (`retryAt`)' }),
    circuitWaitSince: timestamp.optional().meta({ description: "Set while sends wait for the channel's circuit breaker" }),
    providerWindowClosedAt: timestamp.optional(),
    failedDeliveries: z.array(z.string()).optional(),
    optedOut: z.boolean().optional().meta({ description: 'On the suppression list, as the workflow last learned it (the database is the authority)' }),
    followUps: z
      .array(z.strictObject({ id: z.string(), at: timestamp, note: z.string(), template: templateRef.optional() }))
      .optional()
      .meta({ description: 'Follow-ups the AI scheduled with the schedule_follow_up tool, earliest first (GET /v1/leads/{leadId}/follow-ups lists them, DELETE …/follow-ups/{followUpId} cancels one)' }),
    pendingInbound: z.number().int().meta({ description: 'Inbound messages received but not answered yet' }),
    historyLength: z.number().int().meta({ description: 'Events in the current workflow run (it continues as new past a budget)' }),
  })
  .meta({ id: 'LeadState', description: "The lead's conversation workflow state, as its `state` query answers (live, not the database copy)" });

// ------------------------------------------------------------------------------ scheduled follow-ups

/** A follow-up the AI scheduled (schedule_follow_up) that has not gone out yet: contract/agent-tools.ts FollowUp. */
export const leadFollowUpSchema = z
  .strictObject({
    id: uuid.meta({ description: 'What DELETE /v1/leads/{leadId}/follow-ups/{followUpId} takes' }),
    at: timestamp.meta({ description: 'When it goes out (UTC)' }),
    note: z.string().meta({ description: 'What the AI noted to follow up on (the AI writes the message from it when it goes out inside the 24-hour window)' }),
    template: z.string().nullable().meta({ description: "The name of the agent's follow-up template it sends when the 24-hour window is closed by then; null: it is refused then" }),
  })
  .meta({ id: 'LeadFollowUp', description: 'A scheduled follow-up waiting in the lead\'s conversation workflow' });
export const leadFollowUpList = z.strictObject({ items: z.array(leadFollowUpSchema).meta({ description: 'Earliest first (at most 3 wait at once)' }) });
export const leadFollowUpCancelled = z.strictObject({ cancelled: leadFollowUpSchema.meta({ description: 'The follow-up, taken out of the workflow: it will not go out' }) });

// ------------------------------------------------------------------------------ engine answers

export const leadSequenceAnswer = z.strictObject({ sequence: leadSequenceCursorSchema });
export const leadStageAnswer = z.strictObject({ stage: z.string(), sequenceStopped: z.boolean().meta({ description: 'The change stopped the running sequence (it stops on stage_changed)' }) });
export const leadModeAnswer = z.strictObject({ mode: z.enum(LEAD_MODES) });
export const leadExtractAnswer = z.strictObject({ extractionDueAt: timestamp.meta({ description: 'Now: the workflow extracts next; GET /v1/leads/{leadId}/extractions shows the result' }) });

/** contract/messages.ts OutboundResult, as POST /v1/leads/{leadId}/messages answers it. */
export const leadSendResult = z
  .strictObject({
    requestId: uuid,
    status: z.enum(['sent', 'queued']),
    outboundMessageId: uuid.optional().meta({ description: "The message's id (GET /v1/leads/{leadId}/messages); present once sent" }),
    providerMessageId: z.string().optional(),
    reason: z.string().optional().meta({ description: 'queued: why it waits' }),
  })
  .meta({ id: 'LeadSendResult', description: 'What became of a manual message or template' });

/** The 502 of a send the provider refused: the error body with the message's id. */
export const leadSendFailed = z.strictObject({
  error: z.strictObject({
    code: z.literal('delivery_failed'),
    message: z.string(),
    outboundMessageId: uuid.optional().meta({ description: 'The failed message (its status and error: GET /v1/leads/{leadId}/messages)' }),
  }),
});
