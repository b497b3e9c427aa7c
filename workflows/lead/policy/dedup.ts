/**
 * Bounded memory of recently seen inbound message ids. Meta redelivers webhooks for days and
 * signalWithStart cannot dedupe them, so the workflow does. Plain arrays: the memory is
 * carried through continue-as-new as JSON.
 */
export interface DedupDecision {
  admitted: boolean;
  seen: string[];
}

export function admitInbound(seen: readonly string[], id: string, capacity: number): DedupDecision {
  if (seen.includes(id)) return { admitted: false, seen: seen as string[] };
  const next = seen.length >= capacity ? seen.slice(seen.length - capacity + 1) : seen.slice();
  next.push(id);
  return { admitted: true, seen: next };
}
