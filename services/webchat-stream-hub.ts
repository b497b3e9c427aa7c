/**
 * One database poller per web chat channel (per API process), shared by every open stream of
 * that channel: each tick is ONE statement for all of them (`chatChangesForContacts`), whatever
 * the number of streams, and a channel without streams costs nothing.
 *
 * A stream takes part in the channel's query only while its visitor has a conversation, or for
 * a short grace period after it opened or after this process accepted a message from that
 * visitor (the lead appears once the workflow records the first message). A visitor without a
 * conversation is never polled for after that; when no stream of a channel qualifies, the
 * channel's poller stops until one does.
 *
 * Why polling and not LISTEN/NOTIFY: the writers are the worker's activities (possibly other
 * processes); NOTIFY would need a trigger or a notify in every write path, a dedicated
 * listening connection per API process, and polling anyway for embedded PGlite. Sharing one
 * poller per channel already makes the cost O(channels with live conversations), not O(streams).
 */
import type { Logger } from '../lib/logger';
import type { ChatMessage, LeadService } from './leads';

export type ChatChange = ChatMessage & { contactId: string; leadId: string };

export interface StreamSubscriber {
  contactId: string;
  /** True once the visitor has a conversation (set by the stream, or by the poller on its first row). */
  hasConversation: boolean;
  /** Without a conversation, the stream is part of the channel's query until then (ms epoch; subscribe sets it to now + grace). */
  includeUntil: number;
  /** Rows of this visitor's conversation that changed lately, in seq order (may repeat rows). */
  deliver(rows: ChatChange[]): void;
  /** The shared read was cut at its row limit: read your own conversation once to catch up. */
  resync(): void;
}

export interface StreamHubOptions {
  leads: Pick<LeadService, 'chatChangesForContacts'>;
  log: Logger;
  pollMs: number;
  /** How long a new stream without a conversation takes part in the channel's reads (default 30 s). */
  graceMs?: number;
  /** How long it takes part after its visitor posted a message to this process (default 30 s). */
  wakeMs?: number;
  /** Rows one channel read returns at most (default 1000). */
  batch?: number;
}

export interface StreamHub {
  subscribe(channelId: string, sub: StreamSubscriber): () => void;
  /** This process accepted a message from the visitor: include its streams for the grace period. */
  wake(channelId: string, contactId: string): void;
  stats(): { channels: number; pollingChannels: number; subscribers: number };
  close(): void;
}

interface ChannelPoller {
  subs: Set<StreamSubscriber>;
  timer?: NodeJS.Timeout;
  busy: boolean;
  /** When the last successful read started (Date.now()); undefined after a pause. */
  lastReadAt?: number;
  failures: number;
}

export function createStreamHub(opts: StreamHubOptions): StreamHub {
  const graceMs = opts.graceMs ?? 30_000;
  const wakeMs = opts.wakeMs ?? 30_000;
  const batch = opts.batch ?? 1000;
  // a row is read again for this long after it changed: covers a commit that lands after the
  // read that should have seen it (updated_at is the writer's transaction start)
  const marginMs = Math.max(10_000, opts.pollMs * 4);
  const log = opts.log.child({ module: 'webchat-streams' });
  const channels = new Map<string, ChannelPoller>();
  let closed = false;

  function schedule(channelId: string, p: ChannelPoller, delayMs: number) {
    if (closed || p.timer || p.busy) return;
    p.timer = setTimeout(() => {
      p.timer = undefined;
      void read(channelId, p);
    }, delayMs);
    p.timer.unref?.();
  }

  async function read(channelId: string, p: ChannelPoller) {
    if (closed || channels.get(channelId) !== p) return;
    const now = Date.now();
    const contacts = new Set<string>();
    for (const s of p.subs) if (s.hasConversation || s.includeUntil > now) contacts.add(s.contactId);
    if (contacts.size === 0) {
      // nobody to read for: stop until a subscribe or a wake
      p.lastReadAt = undefined;
      return;
    }
    p.busy = true;
    try {
      const recentMs = (p.lastReadAt ? now - p.lastReadAt : 0) + marginMs;
      const rows = await opts.leads.chatChangesForContacts(channelId, [...contacts], { recentMs, limit: batch });
      p.lastReadAt = now;
      p.failures = 0;
      const byContact = new Map<string, ChatChange[]>();
      for (const r of rows) {
        const list = byContact.get(r.contactId);
        if (list) list.push(r);
        else byContact.set(r.contactId, [r]);
      }
      for (const list of byContact.values()) list.sort((a, b) => a.seq - b.seq);
      for (const s of p.subs) {
        const mine = byContact.get(s.contactId);
        if (mine) {
          s.hasConversation = true;
          s.deliver(mine);
        }
        if (rows.length >= batch && contacts.has(s.contactId)) s.resync();
      }
      if (rows.length >= batch) log.warn({ channelAccountId: channelId, rows: rows.length }, 'web chat streams: shared read hit its row limit; streams catch up one by one');
    } catch (err) {
      p.failures += 1;
      if (p.failures === 1 || p.failures % 20 === 0) log.warn({ err, failures: p.failures, channelAccountId: channelId }, 'web chat streams: reading messages failed; retrying');
    } finally {
      p.busy = false;
    }
    if (p.subs.size > 0) schedule(channelId, p, p.failures ? Math.min(opts.pollMs * 2 ** p.failures, 10_000) : opts.pollMs);
    else channels.delete(channelId);
  }

  return {
    subscribe(channelId, sub) {
      let p = channels.get(channelId);
      if (!p) {
        p = { subs: new Set(), busy: false, failures: 0 };
        channels.set(channelId, p);
      }
      // a new stream without a conversation takes part for the grace period (its first message may be on its way)
      if (!sub.hasConversation) sub.includeUntil = Math.max(sub.includeUntil, Date.now() + graceMs);
      p.subs.add(sub);
      schedule(channelId, p, opts.pollMs);
      const poller = p;
      return () => {
        poller.subs.delete(sub);
        if (poller.subs.size === 0 && !poller.busy) {
          clearTimeout(poller.timer);
          poller.timer = undefined;
          if (channels.get(channelId) === poller) channels.delete(channelId);
        }
      };
    },
    wake(channelId, contactId) {
      const p = channels.get(channelId);
      if (!p) return;
      let any = false;
      for (const s of p.subs) {
        if (s.contactId !== contactId || s.hasConversation) continue;
        s.includeUntil = Date.now() + wakeMs;
        any = true;
      }
      if (any) schedule(channelId, p, opts.pollMs);
    },
    stats() {
      let subscribers = 0;
      let polling = 0;
      for (const p of channels.values()) {
        subscribers += p.subs.size;
        if (p.timer || p.busy) polling += 1;
      }
      return { channels: channels.size, pollingChannels: polling, subscribers };
    },
    close() {
      closed = true;
      for (const p of channels.values()) clearTimeout(p.timer);
      channels.clear();
    },
  };
}
