/**
 * A history fetched raw (`handle.fetchHistory()`, the chaos checks, tests, bench) holds what
 * Temporal stores: payloads encrypted by the codec (temporal/payload-codec.ts) and failures whose
 * message reads "Encoded failure", their text in `encodedAttributes` (temporal/failure-converter.ts).
 * `readableHistory` decodes it in place for a reader: every payload through the codec, and every
 * failure's message and stack trace put back where a reader looks for them.
 *
 * A payload the codec cannot decode (its key destroyed by an erasure) is left as it is.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

type Node = Record<string, unknown>;

const isObject = (v: unknown): v is Node => typeof v === 'object' && v !== null && !(v instanceof Uint8Array);

function isPayload(v: unknown): v is Payload {
  return isObject(v) && isObject(v.metadata) && v.metadata.encoding instanceof Uint8Array;
}

/** The JSON a payload holds (json/plain), or undefined. */
function jsonOf(p: Payload): unknown {
  if (Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString('utf8') !== 'json/plain' || !p.data) return undefined;
  try {
    return JSON.parse(Buffer.from(p.data).toString('utf8'));
  } catch {
    return undefined;
  }
}

async function decodeOne(p: Payload, codecs: readonly PayloadCodec[]): Promise<Payload> {
  let out = p;
  try {
    // the SDK encodes with codecs in order and decodes in reverse
    for (const codec of [...codecs].reverse()) out = (await codec.decode([out]))[0] ?? out;
    return out;
  } catch {
    return p;
  }
}

async function walk(node: Node | unknown[], codec: readonly PayloadCodec[]): Promise<void> {
  const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
  for (const k of keys) {
    const v = (node as Record<string | number, unknown>)[k];
    if (isPayload(v)) (node as Record<string | number, unknown>)[k] = await decodeOne(v, codec);
    else if (Array.isArray(v) || isObject(v)) await walk(v, codec);
  }
  // a failure with encoded common attributes: message and stack trace back in place
  if (!Array.isArray(node) && isPayload(node.encodedAttributes)) {
    const attrs = jsonOf(node.encodedAttributes);
    if (isObject(attrs)) {
      if (typeof attrs.message === 'string') node.message = attrs.message;
      if (typeof attrs.stack_trace === 'string') node.stackTrace = attrs.stack_trace;
    }
  }
}

/**
 * Decode a raw history in place (payloads through the codec(s), failures' encoded text) and
 * return it. `codec`: Parley's payload codec (`core.payloadCodec`), or a client's codecs
 * (`client.options.loadedDataConverter.payloadCodecs`); none: only the failures' text.
 */
export async function readableHistory<H extends temporal.api.history.v1.IHistory>(history: H, codec?: PayloadCodec | readonly PayloadCodec[]): Promise<H> {
  await walk(history as unknown as Node, codec === undefined ? [] : Array.isArray(codec) ? codec : [codec as PayloadCodec]);
  return history;
}
