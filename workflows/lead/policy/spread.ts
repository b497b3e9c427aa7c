/**
 * Spreading background wake-ups. A morning wave (hundreds of leads whose sequence step, bump-up
 * or extraction falls due at the same instant) would wake every lead workflow at once: one
 * workflow task each, all queued ahead of the live replies' workflow tasks on the shared task
 * queue (Temporal orders workflow tasks of equal priority first in, first out). Each lead instead
 * waits for its background deadline plus a fixed offset of its own in [0, spreadMs): the wave
 * wakes spread over spreadMs, never early. Pure and deterministic (workflow code).
 */

/** 32-bit FNV-1a of a string. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** This lead's offset for a deadline, ms in [0, spreadMs): the same for the same lead and deadline. */
export function spreadOffsetMs(key: string, at: string, spreadMs: number): number {
  if (!(spreadMs > 0)) return 0;
  return fnv1a(`${key}|${at}`) % Math.floor(spreadMs);
}

/** When a lead wakes for background work due at `at`: `at` plus its offset, as an ISO instant. */
export function spreadAt(key: string, at: string, spreadMs: number): string {
  const offset = spreadOffsetMs(key, at, spreadMs);
  return offset === 0 ? at : new Date(Date.parse(at) + offset).toISOString();
}
