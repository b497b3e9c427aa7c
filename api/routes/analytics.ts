import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { isTimeZone, resolveRange, MAX_RANGE_DAYS } from '../../services/analytics';
import { tenantAuth } from '../middleware/rate-limit';
import { validate } from '../middleware/validate';
import { SETUP_READERS, allow } from '../access';
import { doc } from '../openapi';
import { timestamp, uuid } from '../schemas/common';

const dateOrDatetime = z
  .union([z.iso.date(), z.iso.datetime({ offset: true })])
  .optional()
  .meta({ description: 'A date (YYYY-MM-DD, a day in `timeZone`) or an ISO datetime with an offset' });

export const analyticsQuery = z.strictObject({
  from: dateOrDatetime.meta({ description: 'Start, inclusive: a date (its midnight in `timeZone`) or an ISO datetime. Default: 30 days before the end (today included)' }),
  to: dateOrDatetime.meta({ description: 'End: a date includes its whole day (in `timeZone`); an ISO datetime is exclusive. Default: the end of today in `timeZone`' }),
  timeZone: z
    .string()
    .min(1)
    .max(64)
    .refine(isTimeZone, 'an IANA time zone, e.g. Europe/Paris')
    .optional()
    .meta({ description: 'IANA time zone for the day buckets and date bounds (default UTC)' }),
  channelId: uuid.optional().meta({ description: "Only this channel's leads (another tenant's or an unknown channel: every count is 0). Top-ups, adjustments and suppressions are tenant-wide and ignore it" }),
});

const count = z.number().int().min(0);
const rate = z.number().min(0).max(1).nullable().meta({ description: 'Rounded to 4 decimals; null when the denominator is 0' });

const day = z
  .strictObject({
    date: z.iso.date(),
    newLeads: count.meta({ description: 'Leads created that day (leads.created_at)' }),
    inboundMessages: count,
    outboundMessages: count.meta({ description: 'Outbound messages recorded that day, whatever their status' }),
    templateSends: count.meta({ description: 'Outbound template messages recorded that day, whatever their status' }),
    llmCalls: count,
    llmCostMicros: count.meta({ description: 'Estimated LLM cost in micro-USD (llm_calls.cost_micros)' }),
    creditsSpent: z.number().int().meta({ description: 'Credits debited for replies (credit_ledger kind debit)' }),
    creditsAdded: z.number().int().meta({ description: 'Top-ups and adjustments (credit_ledger kinds topup and adjustment; tenant-wide)' }),
  })
  .meta({ id: 'AnalyticsDay' });

const sequenceStep = z
  .strictObject({
    sequenceId: z.string(),
    sequenceName: z.string().nullable().meta({ description: 'null once the sequence is deleted' }),
    stepIndex: z.number().int().min(0).meta({ description: '0-based, as in the sequence\'s `steps`' }),
    attempted: count.meta({ description: '`sequence_step` events: the step was due and tried (sent, refused, failed or parked)' }),
    sent: count.meta({ description: 'Of those, the step went out (`status: sent`)' }),
    repliedAfter: count.meta({ description: 'Of the sent ones, the lead wrote (an inbound message) after it and before its next step of that sequence or the end of the range' }),
    stopped: count.meta({ description: '`sequence_stopped` events while this step was the next due: it never went out' }),
    stopReasons: z.record(z.string(), count).meta({ description: 'Those stops by reason (lead_replied, stage_changed, handed_off, opted_out, ...)' }),
  })
  .meta({ id: 'AnalyticsSequenceStep' });

export const analyticsSummary = z
  .strictObject({
    range: z.strictObject({
      from: timestamp.meta({ description: 'Inclusive' }),
      to: timestamp.meta({ description: 'Exclusive' }),
      timeZone: z.string(),
      channelId: uuid.nullable(),
      days: z.number().int().min(1).max(MAX_RANGE_DAYS),
    }),
    leads: z.strictObject({
      new: count.meta({ description: 'Leads created in the range' }),
      byStage: z.array(z.strictObject({ stage: z.string(), leads: count })).meta({ description: 'The leads created in the range by the stage they are in now, most first' }),
    }),
    replies: z.strictObject({
      leadsWithInbound: count.meta({ description: 'Leads with at least one inbound message in the range' }),
      leadsAnswered: count.meta({ description: 'Of those, leads with an outbound message sent (by the AI, a person, a step or a template) after their first inbound message of the range, before its end' }),
      replyRate: rate.meta({ description: 'leadsAnswered / leadsWithInbound' }),
      medianFirstResponseSeconds: z.number().min(0).nullable().meta({ description: "Median over the answered leads of (first such outbound's sent_at − first inbound's created_at), in seconds; null when none was answered" }),
    }),
    handoffs: z.strictObject({
      activeLeads: count.meta({ description: 'Leads with a message or a lead event recorded in the range' }),
      leadsHandedOff: count.meta({ description: 'Of those, leads with a `mode_changed` event to `human` in the range (keyword, the LLM tool or the API)' }),
      handoffRate: rate.meta({ description: 'leadsHandedOff / activeLeads' }),
    }),
    optOuts: z.strictObject({
      leads: count.meta({ description: 'Active leads with an `opted_out` event in the range (a STOP phrase, or the suppression API on their contact)' }),
      suppressionsAdded: z.strictObject({ keyword: count, api: count }).meta({ description: 'Suppressions created in the range, by source (tenant-wide)' }),
    }),
    templates: z
      .strictObject({
        sends: count.meta({ description: 'Outbound template messages recorded in the range' }),
        sent: count.meta({ description: 'The provider accepted them (status sent, delivered or read)' }),
        delivered: count.meta({ description: 'Status delivered or read' }),
        read: count,
        failed: count,
        pending: count.meta({ description: 'Not (yet) accepted by the provider' }),
      })
      .meta({ description: 'By current status' }),
    sequences: z.array(sequenceStep).meta({ description: 'Per sequence and step that had a step event or a stop in the range' }),
    llm: z.strictObject({
      calls: count,
      costMicros: count,
      promptTokens: count,
      completionTokens: count,
      byPurpose: z.record(z.string(), z.strictObject({ calls: count, costMicros: count })),
    }),
    credits: z.strictObject({ spent: z.number().int(), added: z.number().int() }),
    days: z.array(day).meta({ description: 'Every calendar day of the range in `timeZone`, oldest first (days with nothing are zeros)' }),
  })
  .meta({ id: 'AnalyticsSummary' });

const DESCRIPTION = `A summary of the tenant's recorded data over a range (default: the last 30 days, today included; at most ${MAX_RANGE_DAYS} calendar days; an empty, reversed or longer range is a 400). Computed in SQL in one snapshot from leads, messages, lead_events, sequences, llm_calls, credit_ledger and suppressions; rows count at their created_at, days are calendar days in \`timeZone\`.

- **leads**: leads created in the range, by the stage they are in now.
- **reply rate**: leads with an outbound message sent (AI, person, step or template: messages do not record who wrote them) after their first inbound message of the range / leads with an inbound message in the range.
- **median first response**: over those answered leads, the first such outbound's sent_at minus that first inbound's created_at, in seconds.
- **handoff rate**: leads with a \`mode_changed\` event to \`human\` in the range / leads with a message or an event in the range.
- **opt-outs**: active leads with an \`opted_out\` event; suppressions created, by source.
- **sequences**, per step: \`sequence_step\` events (attempted, sent), sent steps the lead answered before its next step, \`sequence_stopped\` events while the step was next due.
- **templates**: outbound template messages by current status.
- **LLM**: llm_calls count, tokens and cost (micro-USD); **credits**: ledger debits (spent) and top-ups plus adjustments (added).

\`channelId\` limits everything to that channel's leads except top-ups, adjustments and suppressions (tenant-wide). A fixed number of SQL statements per request.`;

/** GET /v1/analytics/summary: leads, replies, handoffs, opt-outs, sequences, templates, LLM spend and credits over a range. */
export function createAnalyticsRouter(deps: { services: Services }): Router {
  const { services } = deps;
  const r = Router();
  r.get(
    '/v1/analytics/summary',
    tenantAuth(services),
    allow(...SETUP_READERS),
    validate({ query: analyticsQuery }),
    doc({ summary: "The tenant's analytics over a range", description: DESCRIPTION, tags: ['analytics'], responses: { 200: analyticsSummary } }),
    async (_req, res) => {
      const tenantId = res.locals.tenantId as string;
      const range = resolveRange(res.locals.query as z.output<typeof analyticsQuery>);
      res.json(await services.analytics.summary(tenantId, range));
    },
  );
  return r;
}
