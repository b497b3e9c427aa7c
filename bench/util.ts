/** Small helpers the bench scripts share. */
import type { WebhookLoad } from './protocol';
import { BENCH_APP_SECRET } from './stack';

/** A log line with the script's name and the time of day. */
export function logger(name: string): (msg: string) => void {
  return (msg) => process.stdout.write(`[${name} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Run `fn` over `items` with at most `n` at a time; results in the items' order. */
export async function pool<T, R>(items: T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next;
        next += 1;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/**
 * Lead settings for benches that measure queueing and history growth rather than the product's
 * fixed waits: extraction never fires during the run, a short burst debounce (300 ms, the 3 s
 * default would hide queueing), and no per-lead pacing (WhatsApp's ~6 s between two messages to
 * one user would add timers and hours, not what is measured).
 */
export const QUEUEING_BENCH_ENV: Record<string, string> = {
  LEAD_EXTRACTION_IDLE_MS: String(24 * 3_600_000),
  LEAD_DEBOUNCE_GAP_MS: '300',
  LEAD_DEBOUNCE_MAX_WAIT_MS: '2000',
  LEAD_PACING_MIN_GAP_MS: '0',
  WHATSAPP_PAIR_INTERVAL_MS: '0',
};

/**
 * A WebhookLoad of WhatsApp text messages signed with the bench deployment's app secret, to
 * `apiUrl` for the channel `phoneNumberId`; `prefix` is the wa_id prefix (one lead per index).
 */
export function signedLoad(
  apiUrl: string,
  phoneNumberId: string,
  load: { prefix: string; rate: number; count: number; maxSockets?: number } & Pick<WebhookLoad, 'sameLead' | 'leads' | 't0' | 'slice'>,
): WebhookLoad {
  const { prefix, maxSockets, ...rest } = load;
  return { apiUrl, phoneNumberId, appSecret: BENCH_APP_SECRET, waIdPrefix: prefix, maxSockets: maxSockets ?? 64, ...rest };
}
