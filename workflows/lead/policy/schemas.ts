/**
 * The zod schemas of the lead workflow's inputs, for the API edge (admin routes, tests). They
 * live apart from the policies so that no workflow code imports zod: the workflow bundle
 * evaluates its modules once per workflow instance (reuseV8Context keeps a module cache per
 * workflow), and zod was 37 % of the bundle. The workflow checks a send window with
 * `sendWindowProblems` (quiet-hours.ts), which follows `sendWindowSchema`'s rules.
 */
import { z } from 'zod';
import type { AgentOptOutSettings, SendWindow, SequenceDef, SequenceStep, TemplateRef } from '../../../contract/messages';
import { channelProblems, MEDIA_TYPES, type InteractiveMessage, type LocationMessage, type MediaMessage, type ReactionMessage, type RichMessage } from '../../../contract/rich';
import { CHANNELS, SEQUENCE_STEP_KINDS, STOP_CONDITIONS } from '../../../contract/vocabulary';
import { OPT_OUT_LANGUAGES } from './opt-out';
import { HH_MM, isValidTimeZone } from './quiet-hours';

export const sendWindowSchema = z.object({
  days: z
    .array(z.number().int().min(0).max(6))
    .min(1, 'at least one day is required')
    .refine((days) => new Set(days).size === days.length, 'days must be unique'),
  start: z.string().regex(HH_MM, 'start must be HH:MM (00:00–23:59)'),
  end: z.string().regex(HH_MM, 'end must be HH:MM (00:00–23:59)'),
}) satisfies z.ZodType<SendWindow>;

export const timeZoneSchema = z.string().refine(isValidTimeZone, 'must be a valid IANA time zone, e.g. Asia/Kolkata');

const templateHeaderSchema = z
  .strictObject({
    text: z.string().min(1).max(60).optional(),
    media: z
      .strictObject({ link: z.url({ protocol: /^https?$/ }).max(2000).optional(), id: z.string().regex(/^\d{1,40}$/, 'a Meta media id').optional(), filename: z.string().max(240).optional() })
      .refine((m) => (m.link === undefined) !== (m.id === undefined), 'give a link or an id')
      .optional(),
    location: z.strictObject({ latitude: z.number().min(-90).max(90), longitude: z.number().min(-180).max(180), name: z.string().max(1000).optional(), address: z.string().max(1000).optional() }).optional(),
  })
  .refine((h) => [h.text, h.media, h.location].filter((x) => x !== undefined).length === 1, 'give exactly one of text, media, location');

export const templateRefSchema = z.object({
  name: z.string().min(1),
  language: z.string().min(2),
  variables: z.array(z.string()).optional(),
  header: templateHeaderSchema.optional(),
  buttons: z.array(z.strictObject({ index: z.number().int().min(0).max(9), value: z.string().min(1).max(2000) })).max(10).optional(),
}) satisfies z.ZodType<TemplateRef>;

// ------------------------------------------------------------------------------ rich messages (contract/rich.ts)
// Structure here; each channel's limits (button counts, title lengths, caption, file types) are
// checked by `channelProblems` for the channel the message goes out on, so a 400 names the limit.

const str = (max: number) => z.string().trim().min(1).max(max);
const httpUrl = z.url({ protocol: /^https?$/ }).max(2000);
const metaMediaId = z.string().regex(/^\d{1,40}$/, 'a Meta media id (digits)');
/** A media source: a public link, a Meta media id, or a Parley media library id (checked against the library by the API). */
const mediaSource = {
  link: httpUrl.optional().meta({ description: 'A public https URL Meta fetches' }),
  id: metaMediaId.optional().meta({ description: 'A Meta media id (WhatsApp only)' }),
  libraryId: z.uuid().optional().meta({ description: 'A media library file (POST /v1/media) of this tenant, whose kind fits the message: uploaded to Meta on first use per WhatsApp channel, a signed url on Instagram and web chat' }),
};
const oneSource = (m: { link?: string; id?: string; libraryId?: string }) => [m.link, m.id, m.libraryId].filter((x) => x !== undefined).length === 1;
const ONE_SOURCE = 'give exactly one of link, id, libraryId';
const interactiveHeader = z
  .strictObject({
    text: str(4096).optional(),
    media: z.strictObject({ type: z.enum(['image', 'document', 'video']), ...mediaSource, filename: str(1000).optional() }).refine(oneSource, ONE_SOURCE).optional(),
  })
  .refine((h) => (h.text === undefined) !== (h.media === undefined), 'a header is text or media');

export const interactiveMessageSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('button'),
      body: str(4096),
      header: interactiveHeader.optional(),
      footer: str(1000).optional(),
      buttons: z.array(z.strictObject({ id: str(1000), title: str(1000) })).min(1).max(50),
    }),
    z.strictObject({
      type: z.literal('list'),
      body: str(4096),
      header: str(1000).optional(),
      footer: str(1000).optional(),
      button: str(1000).meta({ description: 'The label of the button that opens the list' }),
      sections: z.array(z.strictObject({ title: str(1000).optional(), rows: z.array(z.strictObject({ id: str(1000), title: str(1000), description: str(1000).optional() })).min(1).max(50) })).min(1).max(50),
    }),
    z.strictObject({ type: z.literal('cta_url'), body: str(4096), header: interactiveHeader.optional(), footer: str(1000).optional(), displayText: str(1000), url: httpUrl }),
    z.strictObject({ type: z.literal('quick_replies'), text: str(4096), replies: z.array(z.strictObject({ title: str(1000), payload: str(2000) })).min(1).max(50) }),
    z.strictObject({
      type: z.literal('generic'),
      cards: z
        .array(
          z.strictObject({
            title: str(1000),
            subtitle: str(1000).optional(),
            imageUrl: httpUrl.optional(),
            defaultUrl: httpUrl.optional(),
            buttons: z
              .array(z.discriminatedUnion('type', [z.strictObject({ type: z.literal('web_url'), title: str(1000), url: httpUrl }), z.strictObject({ type: z.literal('postback'), title: str(1000), payload: str(2000) })]))
              .max(10)
              .optional(),
          }),
        )
        .min(1)
        .max(50),
    }),
  ])
  .meta({ description: 'Reply buttons, a list, a call-to-action URL button, Instagram quick replies or a generic template (cards)' }) satisfies z.ZodType<InteractiveMessage>;

export const mediaMessageSchema = z
  .strictObject({ type: z.enum(MEDIA_TYPES), ...mediaSource, caption: str(4096).optional(), filename: str(1000).optional() })
  .refine(oneSource, ONE_SOURCE) satisfies z.ZodType<MediaMessage>;

export const locationMessageSchema = z.strictObject({
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  name: str(1000).optional(),
  address: str(1000).optional(),
}) satisfies z.ZodType<LocationMessage>;

export const reactionMessageSchema = z.strictObject({
  messageId: str(256).meta({ description: 'The provider id of the message reacted to (WhatsApp wamid)' }),
  emoji: str(16),
}) satisfies z.ZodType<ReactionMessage>;

export const richMessageSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('interactive'), interactive: interactiveMessageSchema }),
  z.strictObject({ kind: z.literal('media'), media: mediaMessageSchema }),
  z.strictObject({ kind: z.literal('location'), location: locationMessageSchema }),
  z.strictObject({ kind: z.literal('reaction'), reaction: reactionMessageSchema }),
]) satisfies z.ZodType<RichMessage>;

export const sequenceStepSchema = z
  .object({
    delayMs: z.number().int().min(0),
    kind: z.enum(SEQUENCE_STEP_KINDS),
    template: templateRefSchema.optional(),
    text: z.string().optional(),
    aiInstruction: z.string().optional(),
    message: richMessageSchema.optional().meta({ description: "A `rich` step's message (buttons, list, media, location, …): checked at creation against every channel's limits, degraded to the lead's channel when sent" }),
    sendWindow: sendWindowSchema.optional(),
  })
  .superRefine((step, ctx) => {
    if (step.kind === 'template' && !step.template) ctx.addIssue({ code: 'custom', path: ['template'], message: 'a template step needs a template' });
    if (step.kind === 'text' && !step.text?.trim()) ctx.addIssue({ code: 'custom', path: ['text'], message: 'a text step needs text' });
    if (step.kind === 'rich') {
      if (!step.message) ctx.addIssue({ code: 'custom', path: ['message'], message: 'a rich step needs a message' });
      // a sequence may run on any channel: the step must fit each one as it would go out there (natively, converted or as text)
      else for (const channel of CHANNELS) for (const p of channelProblems(step.message, channel)) ctx.addIssue({ code: 'custom', path: ['message', ...p.path.split('.')], message: `${channel}: ${p.message}` });
    }
  }) satisfies z.ZodType<SequenceStep>;

export const sequenceDefSchema = z.object({
  id: z.string().min(1),
  version: z.number().int().min(1).optional(),
  name: z.string().min(1),
  steps: z.array(sequenceStepSchema).min(1, 'a sequence needs at least one step'),
  stopOn: z.array(z.enum(STOP_CONDITIONS)).refine((s) => new Set(s).size === s.length, 'stop conditions must be unique'),
}) satisfies z.ZodType<SequenceDef>;

const phrases = z.array(z.string().trim().min(1).max(100)).max(50);
/** An agent's opt-out settings (contract AgentOptOutSettings; policy/opt-out.ts). */
export const optOutSettingsSchema = z.strictObject({
  /** Languages whose default phrases apply: any of en, hi, es, pt (default all four; [] = only the agent's own). */
  languages: z.array(z.enum(OPT_OUT_LANGUAGES)).max(OPT_OUT_LANGUAGES.length).optional(),
  /** Extra phrases per language code (e.g. { "fr": { "stop": ["ARRÊT"], "start": ["COMMENCER"] } }). */
  keywords: z
    .record(z.string().regex(/^[a-z]{2,3}$/, 'a language code such as en or pt'), z.strictObject({ stop: phrases.optional(), start: phrases.optional() }))
    .refine((k) => Object.keys(k).length <= 20, 'at most 20 languages')
    .optional(),
  /** Sent once when a contact opts out. */
  confirmationText: z.string().trim().min(1).max(1024).optional(),
  /** Whether the AI still answers a suppressed contact who writes again (default true). */
  replyAfterOptOut: z.boolean().optional(),
}) satisfies z.ZodType<AgentOptOutSettings>;
