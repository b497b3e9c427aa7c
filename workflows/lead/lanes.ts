/**
 * Lanes: whose work a lead's activity is. `live` is a lead who is writing or a person waiting on
 * an update; `background` is work nobody waits for right now (sequence steps, bump-ups,
 * extraction, deferred sends). No Temporal imports: the worker reads the queue name too.
 */
export type Lane = 'live' | 'background';

/** Temporal task priority per lane (1 is first; the server's default is 3). */
export const LANE_PRIORITY: Record<Lane, number> = { live: 1, background: 4 };

/**
 * The background lane's activities run on their own task queue, next to the workflow's, served
 * by the worker's background slots (WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES).
 */
export function backgroundTaskQueue(taskQueue: string): string {
  return `${taskQueue}-background`;
}
