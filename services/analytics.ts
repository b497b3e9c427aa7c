/**
 * A tenant's analytics over a time range, computed in SQL from what Parley records: leads,
 * messages, lead events, LLM calls, the credit ledger and the suppression list. One summary is a
 * fixed number of statements (nine, in one read-only repeatable-read transaction: one snapshot),
 * whatever the range or the data; each filters on an indexed `(tenant_id, created_at)`.
 *
 * Times: every row counts at its `created_at` (when Parley recorded it), except the first
 * response, which counts at the outbound message's `sent_at` (the provider accepted it). Days
 * are calendar days in the requested IANA time zone.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import { AppError } from '../lib/errors';
import { pgErrorCode, rowsOf } from './db-util';

export interface AnalyticsRange {
  /** Inclusive start (ISO instant). */
  from: string;
  /** Exclusive end (ISO instant). */
  to: string;
  /** IANA time zone for day buckets. */
  timeZone: string;
  /** Only this channel's leads (the tenant-wide figures say so). */
  channelId?: string;
}

export interface AnalyticsDay {
  date: string;
  newLeads: number;
  inboundMessages: number;
  outboundMessages: number;
  templateSends: number;
  llmCalls: number;
  llmCostMicros: number;
  creditsSpent: number;
  creditsAdded: number;
}

export interface SequenceStepStats {
  sequenceId: string;
  sequenceName: string | null;
  stepIndex: number;
  attempted: number;
  sent: number;
  repliedAfter: number;
  stopped: number;
  stopReasons: Record<string, number>;
}

export interface AnalyticsSummary {
  range: { from: string; to: string; timeZone: string; channelId: string | null; days: number };
  leads: { new: number; byStage: { stage: string; leads: number }[] };
  replies: { leadsWithInbound: number; leadsAnswered: number; replyRate: number | null; medianFirstResponseSeconds: number | null };
  handoffs: { activeLeads: number; leadsHandedOff: number; handoffRate: number | null };
  optOuts: { leads: number; suppressionsAdded: { keyword: number; api: number } };
  templates: { sends: number; sent: number; delivered: number; read: number; failed: number; pending: number };
  sequences: SequenceStepStats[];
  llm: { calls: number; costMicros: number; promptTokens: number; completionTokens: number; byPurpose: Record<string, { calls: number; costMicros: number }> };
  credits: { spent: number; added: number };
  days: AnalyticsDay[];
}

// ------------------------------------------------------------------------------ time zones

const partsFormat = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = partsFormat.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    if (partsFormat.size > 500) partsFormat.clear();
    partsFormat.set(timeZone, f);
  }
  return f;
}

/** Whether the runtime knows this IANA zone. */
export function isTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

function localFields(t: number, tz: string): { y: number; m: number; d: number; h: number; mi: number; s: number } {
  const p: Record<string, number> = {};
  for (const part of formatter(tz).formatToParts(new Date(t))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return { y: p.year!, m: p.month!, d: p.day!, h: p.hour!, mi: p.minute!, s: p.second! };
}

/** The zone's offset from UTC at instant t, in ms. */
function offsetMs(t: number, tz: string): number {
  const f = localFields(t, tz);
  const wall = Date.UTC(f.y, f.m - 1, f.d, f.h, f.mi, f.s);
  return wall - (t - (((t % 1000) + 1000) % 1000));
}

/** The calendar day (YYYY-MM-DD) of instant t in the zone. */
export function localDate(t: number, tz: string): string {
  const f = localFields(t, tz);
  return `${String(f.y).padStart(4, '0')}-${String(f.m).padStart(2, '0')}-${String(f.d).padStart(2, '0')}`;
}

/** The instant the day (YYYY-MM-DD) starts in the zone. */
export function startOfDay(date: string, tz: string): number {
  const wall = Date.parse(`${date}T00:00:00Z`);
  const first = wall - offsetMs(wall, tz);
  return wall - offsetMs(first, tz);
}

function addDays(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
export const MAX_RANGE_DAYS = 366;
export const DEFAULT_RANGE_DAYS = 30;

/**
 * The range a request asks for. `from`/`to`: a date (YYYY-MM-DD, a day in `timeZone`: `from`
 * starts at its midnight, `to` includes the whole day) or an ISO datetime with an offset (`from`
 * inclusive, `to` exclusive). Default: the last 30 days, today included. Throws a 400 for an
 * empty or reversed range, or one over 366 calendar days.
 */
export function resolveRange(q: { from?: string; to?: string; timeZone?: string; channelId?: string }, now = Date.now()): AnalyticsRange & { dates: string[] } {
  const tz = q.timeZone ?? 'UTC';
  const to = q.to === undefined ? startOfDay(addDays(localDate(now, tz), 1), tz) : DATE_ONLY.test(q.to) ? startOfDay(addDays(q.to, 1), tz) : Date.parse(q.to);
  const from =
    q.from === undefined ? startOfDay(addDays(localDate(to - 1, tz), 1 - DEFAULT_RANGE_DAYS), tz) : DATE_ONLY.test(q.from) ? startOfDay(q.from, tz) : Date.parse(q.from);
  const bad = (path: string, message: string) => new AppError('validation_failed', message, [{ path, message, code: 'invalid_range' }]);
  if (Number.isNaN(from) || Number.isNaN(to)) throw bad('from', 'from and to must be dates or datetimes');
  if (to <= from) throw bad('to', 'to must be after from (a date `to` includes its whole day)');
  const first = localDate(from, tz);
  const last = localDate(to - 1, tz);
  const days = Math.round((Date.parse(`${last}T00:00:00Z`) - Date.parse(`${first}T00:00:00Z`)) / 86_400_000) + 1;
  if (days > MAX_RANGE_DAYS) throw bad('from', `the range covers ${days} days in ${tz}; at most ${MAX_RANGE_DAYS}`);
  const dates: string[] = [];
  for (let d = first; dates.length < days; d = addDays(d, 1)) dates.push(d);
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), timeZone: tz, ...(q.channelId ? { channelId: q.channelId } : {}), dates };
}

// ------------------------------------------------------------------------------ queries

const n = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const ratio = (num: number, den: number): number | null => (den === 0 ? null : Math.round((num / den) * 10_000) / 10_000);
const SENT_STATUSES = ['sent', 'delivered', 'read'];

export function createAnalyticsService(db: Db) {
  return {
    /** The summary of one tenant's range (see the module comment and the README's "Analytics"). */
    async summary(tenantId: string, range: AnalyticsRange & { dates?: string[] }): Promise<AnalyticsSummary> {
      const { from, to, timeZone: tz } = range;
      const channelId = range.channelId ?? null;
      const day = (col: SQL) => sql`to_char(${col} at time zone ${tz}, 'YYYY-MM-DD')`;
      const inRange = (col: SQL) => sql`${col} >= ${from}::timestamptz and ${col} < ${to}::timestamptz`;
      /** Only the channel's leads (alias `l` is the leads row). */
      const onChannel = channelId ? sql`and l.channel_account_id = ${channelId}::uuid` : sql``;

      const run = async (tx: Pick<Db, 'execute'>) => {
        // 1. leads created in range: their current stage, and per day
        const leadRows = rowsOf<{ stage: string; day: string; n: number }>(
          await tx.execute(sql`
            select l.stage, ${day(sql`l.created_at`)} as day, count(*)::int as n
            from leads l
            where l.tenant_id = ${tenantId} and ${inRange(sql`l.created_at`)} ${onChannel}
            group by 1, 2`),
        );
        // 2. leads that wrote in range; the first sent outbound after their first inbound in range
        const [reply] = rowsOf<{ with_inbound: number; answered: number; median_s: number | string | null }>(
          await tx.execute(sql`
            with firsts as (
              select m.lead_id, min(m.created_at) as first_in
              from messages m join leads l on l.id = m.lead_id
              where m.tenant_id = ${tenantId} and m.direction = 'inbound' and ${inRange(sql`m.created_at`)} ${onChannel}
              group by m.lead_id
            ), answered as (
              select f.first_in,
                (select min(o.sent_at) from messages o
                  where o.lead_id = f.lead_id and o.direction = 'outbound' and o.sent_at >= f.first_in and o.sent_at < ${to}::timestamptz) as first_out
              from firsts f
            )
            select count(*)::int as with_inbound, count(first_out)::int as answered,
              percentile_cont(0.5) within group (order by extract(epoch from first_out - first_in)) as median_s
            from answered`),
        );
        // 3. active leads (a message or an event in range), those handed off, those that opted out
        const [activity] = rowsOf<{ active: number; handed_off: number; opted_out: number }>(
          await tx.execute(sql`
            with active as (
              select m.lead_id from messages m where m.tenant_id = ${tenantId} and ${inRange(sql`m.created_at`)}
              union
              select e.lead_id from lead_events e where e.tenant_id = ${tenantId} and ${inRange(sql`e.created_at`)}
            ), ev as (
              select e.lead_id,
                bool_or(e.type = 'mode_changed' and e.data->>'to' = 'human') as handed_off,
                bool_or(e.type = 'opted_out') as opted_out
              from lead_events e
              where e.tenant_id = ${tenantId} and e.type in ('mode_changed', 'opted_out') and ${inRange(sql`e.created_at`)}
              group by e.lead_id
            )
            select count(*)::int as active,
              count(*) filter (where ev.handed_off)::int as handed_off,
              count(*) filter (where ev.opted_out)::int as opted_out
            from active a join leads l on l.id = a.lead_id ${onChannel}
            left join ev on ev.lead_id = a.lead_id`),
        );
        // 4. sequence steps recorded in range, and whether the lead wrote before its next step (or the range's end)
        const stepRows = rowsOf<{ sequence_id: string; name: string | null; step_index: number; attempted: number; sent: number; replied_after: number }>(
          await tx.execute(sql`
            with steps as (
              select e.lead_id, e.created_at, e.data->>'sequenceId' as sequence_id, (e.data->>'stepIndex')::int as step_index, e.data->>'status' as status,
                lead(e.created_at) over (partition by e.lead_id, e.data->>'sequenceId' order by e.created_at, e.id) as next_at
              from lead_events e join leads l on l.id = e.lead_id
              where e.tenant_id = ${tenantId} and e.type = 'sequence_step' and ${inRange(sql`e.created_at`)} ${onChannel}
            )
            select s.sequence_id, q.name, s.step_index, count(*)::int as attempted,
              count(*) filter (where s.status = 'sent')::int as sent,
              count(*) filter (where s.status = 'sent' and exists (
                select 1 from messages i
                where i.lead_id = s.lead_id and i.direction = 'inbound' and i.created_at > s.created_at
                  and i.created_at < coalesce(s.next_at, ${to}::timestamptz) and i.created_at < ${to}::timestamptz))::int as replied_after
            from steps s left join sequences q on q.id::text = s.sequence_id and q.tenant_id = ${tenantId}
            group by 1, 2, 3`),
        );
        // 5. sequences stopped in range: at the step that was due next, by reason
        const stopRows = rowsOf<{ sequence_id: string; name: string | null; step_index: number; reason: string; n: number }>(
          await tx.execute(sql`
            select e.data->>'sequenceId' as sequence_id, q.name, coalesce((e.data->>'stepIndex')::int, 0) as step_index,
              coalesce(e.data->>'reason', 'unknown') as reason, count(*)::int as n
            from lead_events e join leads l on l.id = e.lead_id
            left join sequences q on q.id::text = e.data->>'sequenceId' and q.tenant_id = ${tenantId}
            where e.tenant_id = ${tenantId} and e.type = 'sequence_stopped' and ${inRange(sql`e.created_at`)} ${onChannel}
            group by 1, 2, 3, 4`),
        );
        // 6. messages per day, direction, template or not, status
        const messageRows = rowsOf<{ day: string; direction: string; template: boolean; status: string; n: number }>(
          await tx.execute(sql`
            select ${day(sql`m.created_at`)} as day, m.direction, (m.direction = 'outbound' and m.type = 'template') as template, m.status, count(*)::int as n
            from messages m join leads l on l.id = m.lead_id
            where m.tenant_id = ${tenantId} and ${inRange(sql`m.created_at`)} ${onChannel}
            group by 1, 2, 3, 4`),
        );
        // 7. LLM calls per day and purpose (an erased lead's calls count tenant-wide only)
        const llmRows = rowsOf<{ day: string; purpose: string; calls: number; cost: number | string; prompt: number | string; completion: number | string }>(
          await tx.execute(sql`
            select ${day(sql`c.created_at`)} as day, c.purpose, count(*)::int as calls, coalesce(sum(c.cost_micros), 0)::bigint as cost,
              coalesce(sum(c.prompt_tokens), 0)::bigint as prompt, coalesce(sum(c.completion_tokens), 0)::bigint as completion
            from llm_calls c left join leads l on l.id = c.lead_id
            where c.tenant_id = ${tenantId} and ${inRange(sql`c.created_at`)} ${onChannel}
            group by 1, 2`),
        );
        // 8. credit ledger per day: debits (by the debited message's lead for a channel), top-ups and adjustments (tenant-wide)
        const creditRows = rowsOf<{ day: string; kind: string; amount: number | string }>(
          await tx.execute(sql`
            select ${day(sql`k.created_at`)} as day, k.kind, coalesce(sum(k.amount), 0)::bigint as amount
            from credit_ledger k
            left join messages m on m.id = k.message_id
            left join leads l on l.id = m.lead_id
            where k.tenant_id = ${tenantId} and ${inRange(sql`k.created_at`)}
              ${channelId ? sql`and (k.kind <> 'debit' or l.channel_account_id = ${channelId}::uuid)` : sql``}
            group by 1, 2`),
        );
        // 9. suppressions added in range (tenant-wide: a suppression belongs to no channel)
        const suppressionRows = rowsOf<{ source: string; n: number }>(
          await tx.execute(sql`
            select s.source, count(*)::int as n from suppressions s
            where s.tenant_id = ${tenantId} and ${inRange(sql`s.created_at`)}
            group by 1`),
        );
        return { leadRows, reply, activity, stepRows, stopRows, messageRows, llmRows, creditRows, suppressionRows };
      };

      let r: Awaited<ReturnType<typeof run>>;
      try {
        r = await db.transaction((tx) => run(tx), { isolationLevel: 'repeatable read', accessMode: 'read only' });
      } catch (err) {
        // a zone the runtime knows but the database does not
        if (pgErrorCode(err) === '22023') throw new AppError('validation_failed', `time zone "${tz}" is not known to the database`, [{ path: 'timeZone', message: 'unknown time zone', code: 'invalid_value' }]);
        throw err;
      }

      const dates = range.dates ?? resolveDates(from, to, tz);
      const days = new Map<string, AnalyticsDay>(
        dates.map((date) => [date, { date, newLeads: 0, inboundMessages: 0, outboundMessages: 0, templateSends: 0, llmCalls: 0, llmCostMicros: 0, creditsSpent: 0, creditsAdded: 0 }]),
      );
      const dayOf = (date: string) => days.get(date);

      const byStage = new Map<string, number>();
      let newLeads = 0;
      for (const row of r.leadRows) {
        byStage.set(row.stage, (byStage.get(row.stage) ?? 0) + n(row.n));
        newLeads += n(row.n);
        const d = dayOf(row.day);
        if (d) d.newLeads += n(row.n);
      }

      const templates = { sends: 0, sent: 0, delivered: 0, read: 0, failed: 0, pending: 0 };
      for (const row of r.messageRows) {
        const d = dayOf(row.day);
        if (row.direction === 'inbound') {
          if (d) d.inboundMessages += n(row.n);
          continue;
        }
        if (d) d.outboundMessages += n(row.n);
        if (!row.template) continue;
        templates.sends += n(row.n);
        if (d) d.templateSends += n(row.n);
        if (SENT_STATUSES.includes(row.status)) templates.sent += n(row.n);
        if (row.status === 'delivered' || row.status === 'read') templates.delivered += n(row.n);
        if (row.status === 'read') templates.read += n(row.n);
        if (row.status === 'failed') templates.failed += n(row.n);
        if (row.status === 'pending') templates.pending += n(row.n);
      }

      const llm: AnalyticsSummary['llm'] = { calls: 0, costMicros: 0, promptTokens: 0, completionTokens: 0, byPurpose: {} };
      for (const row of r.llmRows) {
        llm.calls += n(row.calls);
        llm.costMicros += n(row.cost);
        llm.promptTokens += n(row.prompt);
        llm.completionTokens += n(row.completion);
        const p = (llm.byPurpose[row.purpose] ??= { calls: 0, costMicros: 0 });
        p.calls += n(row.calls);
        p.costMicros += n(row.cost);
        const d = dayOf(row.day);
        if (d) {
          d.llmCalls += n(row.calls);
          d.llmCostMicros += n(row.cost);
        }
      }

      const credits = { spent: 0, added: 0 };
      for (const row of r.creditRows) {
        const amount = n(row.amount);
        const d = dayOf(row.day);
        if (row.kind === 'debit') {
          credits.spent -= amount;
          if (d) d.creditsSpent -= amount;
        } else {
          credits.added += amount;
          if (d) d.creditsAdded += amount;
        }
      }

      const steps = new Map<string, SequenceStepStats>();
      const stepOf = (sequenceId: string, name: string | null, stepIndex: number) => {
        const key = `${sequenceId}:${stepIndex}`;
        let s = steps.get(key);
        if (!s) steps.set(key, (s = { sequenceId, sequenceName: name, stepIndex: n(stepIndex), attempted: 0, sent: 0, repliedAfter: 0, stopped: 0, stopReasons: {} }));
        return s;
      };
      for (const row of r.stepRows) {
        const s = stepOf(row.sequence_id, row.name, row.step_index);
        s.attempted += n(row.attempted);
        s.sent += n(row.sent);
        s.repliedAfter += n(row.replied_after);
      }
      for (const row of r.stopRows) {
        const s = stepOf(row.sequence_id, row.name, row.step_index);
        s.stopped += n(row.n);
        s.stopReasons[row.reason] = (s.stopReasons[row.reason] ?? 0) + n(row.n);
      }

      const suppressionsAdded = { keyword: 0, api: 0 };
      for (const row of r.suppressionRows) if (row.source === 'keyword' || row.source === 'api') suppressionsAdded[row.source] += n(row.n);

      const withInbound = n(r.reply?.with_inbound);
      const answered = n(r.reply?.answered);
      const median = r.reply?.median_s === null || r.reply?.median_s === undefined ? null : Math.round(Number(r.reply.median_s) * 1000) / 1000;
      const active = n(r.activity?.active);
      const handedOff = n(r.activity?.handed_off);

      return {
        range: { from, to, timeZone: tz, channelId, days: dates.length },
        leads: { new: newLeads, byStage: [...byStage].map(([stage, leads]) => ({ stage, leads })).sort((a, b) => b.leads - a.leads || a.stage.localeCompare(b.stage)) },
        replies: { leadsWithInbound: withInbound, leadsAnswered: answered, replyRate: ratio(answered, withInbound), medianFirstResponseSeconds: median },
        handoffs: { activeLeads: active, leadsHandedOff: handedOff, handoffRate: ratio(handedOff, active) },
        optOuts: { leads: n(r.activity?.opted_out), suppressionsAdded },
        templates,
        sequences: [...steps.values()].sort((a, b) => a.sequenceId.localeCompare(b.sequenceId) || a.stepIndex - b.stepIndex),
        llm,
        credits,
        days: [...days.values()],
      };
    },
  };
}

function resolveDates(from: string, to: string, tz: string): string[] {
  const first = localDate(Date.parse(from), tz);
  const last = localDate(Date.parse(to) - 1, tz);
  const dates: string[] = [];
  for (let d = first; d <= last && dates.length < MAX_RANGE_DAYS; d = addDays(d, 1)) dates.push(d);
  return dates;
}

export type AnalyticsService = ReturnType<typeof createAnalyticsService>;
