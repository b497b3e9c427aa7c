/**
 * Helpers shared by the Meta webhook parsers (WhatsApp Cloud API, Instagram Messaging):
 * readable zod messages with item-relative paths, and small pure utilities.
 * Pure: no I/O, no logging, never throws on JSON input.
 */
import { z } from 'zod';

/** An item dropped from an otherwise valid body. `path` like "entry[0].changes[1].value.messages[2]". */
export interface IgnoredItem {
  path: string;
  reason: string;
}

/** A short description of a value for error messages. */
export function kind(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}

export const mustBeObject = (iss: { input?: unknown }): string =>
  iss.input === undefined ? 'is required' : `must be an object, got ${kind(iss.input)}`;

export const mustBeArray = (iss: { input?: unknown }): string =>
  iss.input === undefined ? 'is required' : `must be an array, got ${kind(iss.input)}`;

export function requiredString() {
  return z
    .string({
      error: (iss) => (iss.input === undefined ? 'is required' : `must be a string, got ${kind(iss.input)}`),
    })
    .min(1, 'must not be empty');
}

/** Optional cosmetic string: a wrong type is dropped rather than failing the item. */
export const optionalString = z.string().optional().catch(undefined);
export const optionalBoolean = z.boolean().optional().catch(undefined);

/** A number, or a numeric string Meta sometimes sends instead. */
export const numberLike = z.union(
  [
    z.number(),
    z
      .string()
      .trim()
      .regex(/^-?\d+(\.\d+)?$/)
      .transform(Number),
  ],
  { error: (iss) => (iss.input === undefined ? 'is required' : `must be a number, got ${kind(iss.input)}`) },
);

export function formatPath(base: string, segments: readonly PropertyKey[]): string {
  let out = base;
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

/** "is required" at "entry" → "entry is required"; self-contained messages stay as they are. */
export function humanize(path: string, message: string): string {
  if (/^(is|must|should) /.test(message)) return `${path || 'body'} ${message}`;
  if (!path || message.includes(path)) return message;
  return `${path}: ${message}`;
}

export function issuesOf(error: z.ZodError, base = ''): { path: string; message: string }[] {
  return error.issues.map((issue) => {
    const path = formatPath(base, issue.path);
    return { path, message: humanize(path, issue.message) };
  });
}

/** One readable reason for an ignored item, relative to the item. */
export function reasonOf(error: z.ZodError, base = ''): string {
  const messages = issuesOf(error, base).map((i) => i.message);
  const shown = messages.slice(0, 3).join('; ');
  return messages.length > 3 ? `${shown} (and ${messages.length - 3} more)` : shown;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function ownField(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/** The object without its undefined fields (plain JSON across Temporal). */
export function compact<T extends object>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as T;
}

export const withSuffix = (head: string, tail: string | undefined): string => (tail ? `${head} ${tail}` : head);

/**
 * How a chosen option (a reply button, a list row, a template quick reply, an Instagram quick reply
 * or postback) reads for the transcript and the LLM: its title and its id, so a conversation can
 * branch on either ("[button] Yes, deliver (id: deliver_yes)"). The id is left out when it is the
 * title, the title when there is none.
 */
export function optionChoice(head: string, title: string | undefined, id: string | undefined, extra?: string): string {
  const shown = title || id || '';
  const tail = id && id !== title ? ` (id: ${id})` : '';
  return `${withSuffix(head, shown || undefined)}${extra ? ` — ${extra}` : ''}${tail}`;
}

export function truncate(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

/** Parse the payload under `raw[key]`, reporting issues relative to the item ("image.id is required"). */
export function payload<S extends z.ZodType>(
  schema: S,
  raw: Record<string, unknown>,
  key: string,
): { ok: true; data: z.output<S> } | { ok: false; reason: string } {
  const parsed = schema.safeParse(ownField(raw, key));
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, reason: reasonOf(parsed.error, key) };
}

/** Why a whole webhook body was rejected (400 with the issues). */
export interface BodyRejected {
  ok: false;
  reason: string;
  issues: { path: string; message: string }[];
}

/** Run a body parser so that even a hostile non-JSON input (a throwing getter, a proxy) is a rejection, never a crash. */
export function parseGuarded<R>(body: unknown, parse: (body: unknown) => R): R | BodyRejected {
  try {
    return parse(body);
  } catch (err) {
    // Only reachable with non-JSON inputs; never from a parsed body.
    const message = `body could not be read: ${err instanceof Error ? err.message : String(err)}`;
    return { ok: false, reason: message, issues: [{ path: '', message }] };
  }
}
