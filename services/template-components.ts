/**
 * WhatsApp message template components: Meta's `components` array (GET /<WABA_ID>/message_templates)
 * normalized into what Parley stores, and a send's parameters checked against them and turned
 * into the Cloud API's `template.components`. Pure: no I/O.
 *
 * Meta's shapes (https://developers.facebook.com/docs/whatsapp/business-management-api/message-templates):
 *   HEADER  { format: TEXT | IMAGE | VIDEO | DOCUMENT | LOCATION, text?: "Order {{1}}" }
 *   BODY    { text: "Hi {{1}} ..." }  (or named {{first_name}} with parameter_format NAMED)
 *   FOOTER  { text }
 *   BUTTONS { buttons: [{ type: QUICK_REPLY | URL | PHONE_NUMBER | COPY_CODE | OTP | FLOW | ..., text, url?, phone_number?, otp_type? }] }
 */
import type { TemplateRef } from '../contract/messages';

export type TemplateButtonParameter =
  /** No parameter may be given (PHONE_NUMBER, a static URL, FLOW, anything unknown). */
  | 'none'
  /** A URL button whose url ends in {{1}}: the suffix is required (sub_type url). */
  | 'url_suffix'
  /** COPY_CODE: the coupon code is required (sub_type copy_code). */
  | 'coupon_code'
  /** OTP (authentication templates): the one-time code is required (sent as sub_type url). */
  | 'otp_code'
  /** QUICK_REPLY: an optional payload (sub_type quick_reply). */
  | 'payload';

export interface TemplateButton {
  index: number;
  /** Meta's button type as sent (QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, ...). */
  type: string;
  text?: string;
  url?: string;
  phoneNumber?: string;
  otpType?: string;
  parameter: TemplateButtonParameter;
}

export interface TemplateComponents {
  /** format as Meta sends it: TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION (others kept as sent). */
  header?: { format: string; text?: string; variables: number; names?: string[] };
  body?: { text: string; variables: number; names?: string[] };
  footer?: { text: string };
  buttons: TemplateButton[];
}

export const MEDIA_HEADER_FORMATS = ['IMAGE', 'VIDEO', 'DOCUMENT'] as const;

const POSITIONAL = /\{\{\s*(\d+)\s*\}\}/g;
const NAMED = /\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}/g;

function placeholders(text: string, named: boolean): { variables: number; names?: string[] } {
  if (named) {
    const names = [...new Set([...text.matchAll(NAMED)].map((m) => m[1]!))];
    return { variables: names.length, names };
  }
  let max = 0;
  for (const m of text.matchAll(POSITIONAL)) max = Math.max(max, Number(m[1]));
  return { variables: max };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const rec = (v: unknown): Record<string, unknown> | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

function buttonParameter(type: string, url: string | undefined): TemplateButtonParameter {
  switch (type) {
    case 'URL':
      return url && /\{\{\s*\w+\s*\}\}/.test(url) ? 'url_suffix' : 'none';
    case 'COPY_CODE':
      return 'coupon_code';
    case 'OTP':
      return 'otp_code';
    case 'QUICK_REPLY':
      return 'payload';
    default:
      return 'none';
  }
}

/** Meta's components array → ours. Unknown component types are left out; never throws. */
export function normalizeComponents(raw: unknown, parameterFormat?: string): TemplateComponents {
  const named = parameterFormat?.toUpperCase() === 'NAMED';
  const out: TemplateComponents = { buttons: [] };
  if (!Array.isArray(raw)) return out;
  for (const item of raw) {
    const c = rec(item);
    if (!c) continue;
    const type = str(c.type)?.toUpperCase();
    if (type === 'HEADER') {
      const format = str(c.format)?.toUpperCase() ?? 'TEXT';
      const text = str(c.text);
      out.header = { format, ...(text !== undefined ? { text } : {}), ...(format === 'TEXT' && text ? placeholders(text, named) : { variables: 0 }) };
    } else if (type === 'BODY') {
      const text = str(c.text) ?? '';
      out.body = { text, ...placeholders(text, named) };
    } else if (type === 'FOOTER') {
      out.footer = { text: str(c.text) ?? '' };
    } else if (type === 'BUTTONS' && Array.isArray(c.buttons)) {
      c.buttons.forEach((b, index) => {
        const button = rec(b);
        if (!button) return;
        const btype = str(button.type)?.toUpperCase() ?? 'UNKNOWN';
        const url = str(button.url);
        out.buttons.push({
          index,
          type: btype,
          ...(str(button.text) !== undefined ? { text: str(button.text) } : {}),
          ...(url !== undefined ? { url } : {}),
          ...(str(button.phone_number) !== undefined ? { phoneNumber: str(button.phone_number) } : {}),
          ...(str(button.otp_type) !== undefined ? { otpType: str(button.otp_type) } : {}),
          parameter: buttonParameter(btype, url),
        });
      });
    }
  }
  return out;
}

/** A local template (POST /v1/templates) is a body only. */
export function localComponents(body: string): TemplateComponents {
  return { body: { text: body, ...placeholders(body, false) }, buttons: [] };
}

export type ParameterCheck = { ok: true; components: Record<string, unknown>[] } | { ok: false; reason: string };

/**
 * Check a send's parameters against the template's components and build the Cloud API's
 * `template.components`: header (text {{1}} or media link/id or location), body (exactly the
 * template's variable count), buttons (a dynamic URL suffix, a copy code, an OTP code; an
 * optional quick-reply payload). Anything missing, extra or of the wrong kind is a reason.
 */
export function buildTemplateParameters(c: TemplateComponents, ref: Pick<TemplateRef, 'variables' | 'header' | 'buttons'>): ParameterCheck {
  const out: Record<string, unknown>[] = [];
  const header = c.header;
  const given = ref.header;
  if (header && header.format === 'TEXT' && header.variables > 0) {
    if (!given?.text) return { ok: false, reason: `the header takes ${header.variables} text parameter(s): give header.text` };
    if (header.variables !== 1) return { ok: false, reason: `the header takes ${header.variables} text parameters; Meta allows one` };
    out.push({ type: 'header', parameters: [{ type: 'text', text: given.text, ...(header.names?.[0] ? { parameter_name: header.names[0] } : {}) }] });
  } else if (header && (MEDIA_HEADER_FORMATS as readonly string[]).includes(header.format)) {
    const media = given?.media;
    if (!media || (!media.link && !media.id)) return { ok: false, reason: `the header is ${header.format}: give header.media with a link or an id` };
    if (given?.text !== undefined || given?.location !== undefined) return { ok: false, reason: `the header is ${header.format}: only header.media applies` };
    const kind = header.format.toLowerCase();
    const object = { ...(media.id ? { id: media.id } : { link: media.link }), ...(kind === 'document' && media.filename ? { filename: media.filename } : {}) };
    out.push({ type: 'header', parameters: [{ type: kind, [kind]: object }] });
  } else if (header && header.format === 'LOCATION') {
    const loc = given?.location;
    if (!loc) return { ok: false, reason: 'the header is LOCATION: give header.location (latitude, longitude)' };
    out.push({ type: 'header', parameters: [{ type: 'location', location: loc }] });
  } else if (given !== undefined) {
    return { ok: false, reason: header ? `the ${header.format} header takes no parameter` : 'the template has no header parameter' };
  }

  const variables = ref.variables ?? [];
  const want = c.body?.variables ?? 0;
  if (variables.length !== want) return { ok: false, reason: `the body takes ${want} variable(s), got ${variables.length}` };
  if (variables.some((v) => v.trim() === '')) return { ok: false, reason: 'a body variable is empty (Meta refuses empty parameters)' };
  if (want > 0) {
    const names = c.body?.names;
    out.push({ type: 'body', parameters: variables.map((text, i) => ({ type: 'text', text, ...(names?.[i] ? { parameter_name: names[i] } : {}) })) });
  }

  const buttons = ref.buttons ?? [];
  const seen = new Set<number>();
  for (const b of buttons) {
    if (seen.has(b.index)) return { ok: false, reason: `button ${b.index} is given twice` };
    seen.add(b.index);
    const button = c.buttons.find((x) => x.index === b.index);
    if (!button) return { ok: false, reason: `the template has no button ${b.index}` };
    if (button.parameter === 'none') return { ok: false, reason: `button ${b.index} (${button.type}) takes no parameter` };
  }
  for (const button of c.buttons) {
    const value = buttons.find((b) => b.index === button.index)?.value;
    const index = String(button.index);
    switch (button.parameter) {
      case 'url_suffix':
      case 'otp_code':
        if (!value) return { ok: false, reason: `button ${button.index} (${button.type}) needs a value (${button.parameter === 'otp_code' ? 'the one-time code' : 'the URL suffix'})` };
        out.push({ type: 'button', sub_type: 'url', index, parameters: [{ type: 'text', text: value }] });
        break;
      case 'coupon_code':
        if (!value) return { ok: false, reason: `button ${button.index} (COPY_CODE) needs a value (the code to copy)` };
        if (value.length > 15) return { ok: false, reason: `button ${button.index} (COPY_CODE): the code is over Meta's 15 characters` };
        out.push({ type: 'button', sub_type: 'copy_code', index, parameters: [{ type: 'coupon_code', coupon_code: value }] });
        break;
      case 'payload':
        if (value) out.push({ type: 'button', sub_type: 'quick_reply', index, parameters: [{ type: 'payload', payload: value }] });
        break;
      default:
        break;
    }
  }
  return { ok: true, components: out };
}

/** Fill the header and body placeholders, for the transcript (Meta renders the real message). */
export function renderTemplateText(c: TemplateComponents, ref: Pick<TemplateRef, 'variables' | 'header'>): string {
  const fill = (text: string, values: string[], names?: string[]) =>
    text.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, key: string) => {
      const i = /^\d+$/.test(key) ? Number(key) - 1 : (names ?? []).indexOf(key);
      return values[i] ?? whole;
    });
  const parts: string[] = [];
  if (c.header?.format === 'TEXT' && c.header.text) parts.push(fill(c.header.text, ref.header?.text ? [ref.header.text] : [], c.header.names));
  if (c.body) parts.push(fill(c.body.text, ref.variables ?? [], c.body.names));
  if (c.footer?.text) parts.push(c.footer.text);
  return parts.join('\n');
}
