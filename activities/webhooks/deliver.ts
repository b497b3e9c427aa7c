/**
 * Outbound webhook deliveries (Standard Webhooks): one POST per attempt of a delivery row, run by
 * `webhookDeliveryWorkflow` (workflows/webhook-delivery.ts), which owns the retries.
 *
 * - Headers `webhook-id` (the event's id, the same on every attempt and endpoint),
 *   `webhook-timestamp` (seconds), `webhook-signature` (`v1,` + base64 HMAC-SHA256 over
 *   `${id}.${timestamp}.${body}` keyed by the secret's base64-decoded bytes after `whsec_`).
 * - The url is checked on every attempt (activities/webhooks/url-guard.ts) and the connection
 *   goes to the address that was checked; redirects are not followed (a 3xx is a refusal).
 * - Bounded: WEBHOOK_TIMEOUT_MS for the whole attempt, at most 64 KB of the answer read, 500
 *   characters of it kept.
 * - 2xx: delivered. 408, 429, 5xx, network errors, timeouts: retried (webhook_transient).
 *   Other 3xx/4xx: final (webhook_rejected): the receiver said no, and Standard Webhooks'
 *   receivers answer 4xx to a bad signature, which a retry with the same secret cannot fix.
 * - The secret is decrypted here and never logged nor returned into a Temporal payload.
 */
import { recordOutboundWebhookDelivery, type OutboundWebhookOutcome } from '../../lib/metrics';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import type { Logger } from '../../lib/logger';
import type { WebhookEndpointService } from '../../services/webhook-endpoints';
import type { ResolveHost } from '../media/url-guard';
import { checkWebhookUrl } from './url-guard';

/** The most of an endpoint's answer read (the rest is dropped, the connection closed). */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export interface WebhookSettings {
  timeoutMs: number;
  retryInitialMs: number;
  retryMaxIntervalMs: number;
  retryMaxDurationMs: number;
  disableAfterFailures: number;
  dispatchIntervalMs: number;
  /** Run the outbox relay in this worker (WEBHOOK_RELAY; default true). */
  relay?: boolean;
  /** NODE_ENV development or test: http and loopback receivers allowed. */
  allowLocal: boolean;
}

/** `v1,<base64 HMAC-SHA256>` over `${id}.${timestamp}.${body}`, keyed by the `whsec_` secret's decoded bytes. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

type Answer = { status: number; excerpt: string };

/** POST `body` to `url`, connecting to `address` (already checked); at most MAX_RESPONSE_BYTES of the answer read. */
function pinnedPost(url: URL, address: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<Answer> {
  const family = isIP(address);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise<Answer>((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal: AbortSignal.timeout(timeoutMs),
        lookup: (_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => (opts?.all ? cb(null, [{ address, family }]) : cb(null, address, family)),
      } as http.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => resolve({ status: res.statusCode ?? 0, excerpt: Buffer.concat(chunks).toString('utf8') });
        res.on('data', (c: Buffer) => {
          if (size >= MAX_RESPONSE_BYTES) return;
          chunks.push(c.subarray(0, MAX_RESPONSE_BYTES - size));
          size += c.length;
          if (size >= MAX_RESPONSE_BYTES) {
            done();
            res.destroy();
          }
        });
        res.on('end', done);
        res.on('error', reject);
        res.on('close', () => reject(new Error('the connection closed before the answer ended')));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function createWebhookActivities(deps: { webhookEndpoints?: WebhookEndpointService; webhooks?: WebhookSettings; log: Logger; resolveHost?: ResolveHost }) {
  const log = deps.log.child({ module: 'webhooks' });
  const service = () => {
    if (!deps.webhookEndpoints || !deps.webhooks) throw ApplicationFailure.create({ type: FailureType.InvalidInput, message: 'outbound webhooks are not configured on this worker', nonRetryable: true });
    return { endpoints: deps.webhookEndpoints, settings: deps.webhooks };
  };
  return {
    /** One attempt of a delivery; throws to be retried (webhook_transient) or to end it (webhook_rejected, _url_refused, _endpoint_gone). */
    async deliverWebhook(input: { deliveryId: string }): Promise<{ status: number; alreadyFinished?: boolean }> {
      const { endpoints, settings } = service();
      const target = await endpoints.target(input.deliveryId);
      if (!target) throw ApplicationFailure.create({ type: FailureType.WebhookEndpointGone, message: 'the delivery or its endpoint was deleted', nonRetryable: true });
      if (target.status === 'succeeded' || target.status === 'failed') return { status: 0, alreadyFinished: true };
      if (!target.endpointEnabled) throw ApplicationFailure.create({ type: FailureType.WebhookEndpointGone, message: 'the endpoint is disabled', nonRetryable: true });
      const verdict = await checkWebhookUrl(target.url, { allowLocal: settings.allowLocal, resolve: deps.resolveHost });
      if (!verdict.ok) {
        await endpoints.recordAttempt(input.deliveryId, { status: null, excerpt: `refused: ${verdict.reason}` });
        throw ApplicationFailure.create({ type: verdict.transient ? FailureType.WebhookTransient : FailureType.WebhookUrlRefused, message: `webhook url refused: ${verdict.reason}`, nonRetryable: !verdict.transient });
      }
      const timestamp = Math.floor(Date.now() / 1000);
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'Parley-Webhooks/1',
        'webhook-id': target.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(target.secret, target.eventId, timestamp, target.body),
      };
      let answer: Answer;
      const started = Date.now();
      const attempt = (outcome: OutboundWebhookOutcome) => recordOutboundWebhookDelivery({ event: target.eventType, outcome, durationMs: Date.now() - started });
      try {
        answer = await pinnedPost(new URL(target.url), verdict.address, headers, target.body, settings.timeoutMs);
      } catch (err) {
        const e = err as Error & { code?: string };
        const reason = e.name === 'TimeoutError' || e.name === 'AbortError' ? `timed out after ${settings.timeoutMs} ms` : `${e.code ?? e.name}: ${e.message}`;
        await endpoints.recordAttempt(input.deliveryId, { status: null, excerpt: reason });
        log.info({ deliveryId: input.deliveryId, endpointId: target.endpointId, reason }, 'webhook delivery attempt failed');
        attempt('failed');
        throw ApplicationFailure.create({ type: FailureType.WebhookTransient, message: `webhook delivery failed: ${reason}` });
      }
      await endpoints.recordAttempt(input.deliveryId, { status: answer.status, excerpt: answer.excerpt });
      if (answer.status >= 200 && answer.status < 300) {
        attempt('delivered');
        return { status: answer.status };
      }
      log.info({ deliveryId: input.deliveryId, endpointId: target.endpointId, status: answer.status }, 'webhook delivery attempt refused');
      const retryable = answer.status === 408 || answer.status === 429 || answer.status >= 500 || answer.status < 200;
      attempt(retryable ? 'failed' : 'gave_up');
      throw ApplicationFailure.create({
        type: retryable ? FailureType.WebhookTransient : FailureType.WebhookRejected,
        message: `webhook endpoint answered ${answer.status}`,
        nonRetryable: !retryable,
      });
    },

    /** The delivery ended (delivered, or failed for good): the row and the endpoint's failure count (disabled after too many). */
    async finishWebhookDelivery(input: { deliveryId: string; succeeded: boolean; reason?: string }): Promise<{ endpointDisabled: boolean }> {
      const { endpoints, settings } = service();
      const r = await endpoints.finish(input.deliveryId, { succeeded: input.succeeded, reason: input.reason, disableAfter: settings.disableAfterFailures });
      if (r.endpointDisabled) log.warn({ deliveryId: input.deliveryId, after: settings.disableAfterFailures }, 'webhook endpoint disabled after repeated failed deliveries');
      return r;
    },
  };
}
