/**
 * "Meta" for the chaos run: sends signed WhatsApp text webhooks to the API at a steady rate
 * and behaves like Meta's delivery: a webhook that is not answered 2xx (503 while Temporal is
 * down, a timeout, a refused connection) is delivered again later with backoff until it is
 * accepted, and a share of accepted webhooks is delivered a second time (at-least-once).
 */
import type { GraphRequestRecord } from '../../fakes/graph-api';
import { whatsAppStatusWebhook, whatsAppTextWebhook } from '../../fakes/meta-webhooks';
import { signMetaBody } from '../../lib/crypto';

export interface PlannedMessage {
  /** The wamid: unique per message, the same on every redelivery. */
  wamid: string;
  waId: string;
  leadIndex: number;
  text: string;
}

interface MessageState extends PlannedMessage {
  /** A status webhook (not counted as an inbound message). */
  status?: { wamid: string; status: 'sent' | 'delivered'; outboundMessageId: string };
  body?: string;
  signature?: string;
  /** First 2xx of any delivery of this message. */
  acceptedAt?: number;
  deliveries: number;
  duplicateScheduled: boolean;
}

export interface DeliveryStats {
  /** Unique messages whose first delivery was attempted / accepted at least once. */
  uniqueSent: number;
  uniqueAccepted: number;
  /** Every HTTP POST made. */
  posts: number;
  /** Deliveries again after a non-2xx answer or no answer. */
  redeliveriesAfterFailure: number;
  /** Deliveries of an already accepted message (Meta's at-least-once). */
  duplicateDeliveries: number;
  /** POSTs answered 2xx (originals, redeliveries and duplicates). */
  accepted: number;
  /** Answers by HTTP status, plus "timeout" and "network" for no answer. */
  answers: Record<string, number>;
  /** Longest time from a message's first delivery attempt to its acceptance, ms. */
  maxAcceptDelayMs: number;
  /** When non-2xx answers / no answers were seen: [first, last] per outage window (ms epoch). */
  failureWindows: [number, number][];
  /** Status webhooks (sent, delivered) for our replies: scheduled and accepted. */
  statusWebhooks: { scheduled: number; accepted: number };
}

export interface MetaSenderOptions {
  apiUrl: string;
  phoneNumberId: string;
  appSecret: string;
  rate: number;
  duplicateRate: number;
  random: () => number;
  timeoutMs?: number;
}

export class MetaSender {
  private readonly states: MessageState[] = [];
  private outstanding = 0;
  private idleWaiters: (() => void)[] = [];
  private firstAttemptAt = new Map<string, number>();
  readonly stats: DeliveryStats = {
    uniqueSent: 0,
    uniqueAccepted: 0,
    posts: 0,
    redeliveriesAfterFailure: 0,
    duplicateDeliveries: 0,
    accepted: 0,
    answers: {},
    maxAcceptDelayMs: 0,
    failureWindows: [],
    statusWebhooks: { scheduled: 0, accepted: 0 },
  };

  constructor(private readonly opts: MetaSenderOptions) {}

  /** Send every message once at the steady rate (redeliveries go on in the background). */
  async sendAll(plan: PlannedMessage[], onProgress?: (sent: number) => void): Promise<void> {
    const t0 = Date.now();
    const interval = 1000 / this.opts.rate;
    for (let i = 0; i < plan.length; i += 1) {
      const due = t0 + i * interval;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const s: MessageState = { ...plan[i]!, deliveries: 0, duplicateScheduled: false };
      this.states.push(s);
      this.stats.uniqueSent += 1;
      this.deliver(s, 'original', 0);
      onProgress?.(i + 1);
    }
  }

  /**
   * Meta's status webhooks for a send the Graph API accepted: `sent` 0.3–3 s later, then
   * `delivered`, each echoing our id in biz_opaque_callback_data (delivered like any webhook:
   * again and again until accepted).
   */
  statusesFor(send: GraphRequestRecord): void {
    const body = send.body as { to?: unknown; biz_opaque_callback_data?: unknown };
    const wamid = ((send.response.body as { messages?: { id?: string }[] }).messages ?? [])[0]?.id;
    if (typeof body.to !== 'string' || !wamid) return;
    const outboundMessageId = String(body.biz_opaque_callback_data ?? '');
    const sentAfter = 300 + this.opts.random() * 2700;
    const deliveredAfter = sentAfter + 500 + this.opts.random() * 2500;
    for (const [status, after] of [['sent', sentAfter], ['delivered', deliveredAfter]] as const) {
      this.stats.statusWebhooks.scheduled += 1;
      this.later(after, () =>
        this.deliver(
          { wamid, waId: body.to as string, leadIndex: -1, text: '', deliveries: 0, duplicateScheduled: true, status: { wamid, status, outboundMessageId } },
          'status',
          0,
        ),
      );
    }
  }

  /** Resolves when every delivery (retries and duplicates too) has been accepted. */
  settle(timeoutMs: number): Promise<boolean> {
    if (this.outstanding === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  get pendingDeliveries(): number {
    return this.outstanding;
  }

  /** wamid → lead index, for every message sent. */
  messages(): readonly (PlannedMessage & { acceptedAt?: number })[] {
    return this.states;
  }

  private deliver(s: MessageState, kind: 'original' | 'retry' | 'duplicate' | 'status', attempt: number): void {
    this.outstanding += 1;
    void this.post(s).then((answer) => {
      this.stats.posts += 1;
      this.stats.answers[answer] = (this.stats.answers[answer] ?? 0) + 1;
      const ok = /^2\d\d$/.test(answer);
      if (ok && s.status) {
        if (s.acceptedAt === undefined) this.stats.statusWebhooks.accepted += 1;
        s.acceptedAt ??= Date.now();
      } else if (ok) {
        this.stats.accepted += 1;
        if (s.acceptedAt === undefined) {
          s.acceptedAt = Date.now();
          this.stats.uniqueAccepted += 1;
          const first = this.firstAttemptAt.get(s.wamid) ?? s.acceptedAt;
          this.stats.maxAcceptDelayMs = Math.max(this.stats.maxAcceptDelayMs, s.acceptedAt - first);
        }
        if (kind !== 'duplicate' && !s.duplicateScheduled && this.opts.random() < this.opts.duplicateRate) {
          // Meta delivers this one again, 0.5–10 s later
          s.duplicateScheduled = true;
          this.later(500 + this.opts.random() * 9500, () => {
            this.stats.duplicateDeliveries += 1;
            this.deliver(s, 'duplicate', 0);
          });
        }
      } else {
        const now = Date.now();
        const w = this.stats.failureWindows.at(-1);
        if (w && now - w[1] < 5000) w[1] = now;
        else this.stats.failureWindows.push([now, now]);
        // Meta's backoff: 1 s, 2 s, 4 s … up to 30 s, with jitter
        const delay = Math.min(30_000, 1000 * 2 ** attempt) * (0.5 + this.opts.random());
        this.later(delay, () => {
          this.stats.redeliveriesAfterFailure += 1;
          this.deliver(s, kind === 'duplicate' || kind === 'status' ? kind : 'retry', attempt + 1);
        });
      }
      this.done();
    });
  }

  private later(ms: number, fn: () => void): void {
    this.outstanding += 1;
    setTimeout(() => {
      fn();
      this.done();
    }, ms);
  }

  private done(): void {
    this.outstanding -= 1;
    if (this.outstanding === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** One POST; the answer as an HTTP status, "timeout" or "network". */
  private async post(s: MessageState): Promise<string> {
    if (!s.body) {
      s.body = JSON.stringify(
        s.status
          ? whatsAppStatusWebhook({
              phoneNumberId: this.opts.phoneNumberId,
              id: s.status.wamid,
              status: s.status.status,
              recipientId: s.waId,
              bizOpaqueCallbackData: s.status.outboundMessageId,
            })
          : whatsAppTextWebhook({ phoneNumberId: this.opts.phoneNumberId, from: s.waId, text: s.text, id: s.wamid, name: `Chaos Lead ${s.leadIndex}` }),
      );
      s.signature = signMetaBody(s.body, this.opts.appSecret);
    }
    if (!s.status && !this.firstAttemptAt.has(s.wamid)) this.firstAttemptAt.set(s.wamid, Date.now());
    s.deliveries += 1;
    try {
      const res = await fetch(`${this.opts.apiUrl}/webhooks/whatsapp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': s.signature! },
        body: s.body,
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
      });
      await res.arrayBuffer();
      return String(res.status);
    } catch (err) {
      const name = (err as Error).name;
      return name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network';
    }
  }
}
