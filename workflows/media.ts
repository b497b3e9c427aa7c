/**
 * On-demand media download as a tiny workflow: Temporal retries the `fetchMedia` activity,
 * and concurrent API requests for the same media share one run (workflow id
 * `media:{channelAccountId}:{mediaId}`, started with the "use existing" conflict policy).
 * The bytes never cross Temporal: the activity stores them and returns their facts.
 */
import { proxyActivities } from '@temporalio/workflow';
import { MEDIA_NON_RETRYABLE } from '../contract/failures';
import type { FetchMediaInput, FetchMediaResult } from '../activities/media/fetch';
import type { createMediaActivities } from '../activities/media/fetch';

export const FETCH_MEDIA_WORKFLOW_TYPE = 'fetchMediaWorkflow';

const { fetchMedia } = proxyActivities<ReturnType<typeof createMediaActivities>>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '20 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [...MEDIA_NON_RETRYABLE],
  },
});

export async function fetchMediaWorkflow(input: FetchMediaInput): Promise<FetchMediaResult> {
  return fetchMedia(input);
}

/** 128-bit non-cryptographic hash (cyrb128) as hex: keeps long ids (Instagram CDN urls) short in workflow ids. */
function hash128(value: string): string {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < value.length; i++) {
    const k = value.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1, h2, h3, h4].map((h) => (h >>> 0).toString(16).padStart(8, '0')).join('');
}

/** `media:{channelAccountId}:{mediaId}`; an id that is long or not url-safe (a CDN url) is hashed. */
export function mediaWorkflowId(channelAccountId: string, providerMediaId: string): string {
  const safe = /^[A-Za-z0-9._-]{1,128}$/.test(providerMediaId) ? providerMediaId : `h${hash128(providerMediaId)}`;
  return `media:${channelAccountId}:${safe}`;
}
