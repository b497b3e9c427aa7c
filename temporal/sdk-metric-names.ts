/**
 * Metric names the Temporal SDK's core exports on Prometheus (TypeScript SDK 1.24, default
 * options: no `_total` or unit suffixes, durations in milliseconds). The worker's METRICS_PORT
 * serves them merged with Parley's (temporal/metrics-server.ts). Histograms add `_bucket`,
 * `_sum` and `_count`. Used by the dashboard and alert rules check (scripts/check-dashboards.ts).
 */
export const TEMPORAL_SDK_METRIC_NAMES = [
  'temporal_workflow_task_execution_failed',
  'temporal_workflow_task_execution_latency',
  'temporal_workflow_task_schedule_to_start_latency',
  'temporal_workflow_task_replay_latency',
  'temporal_workflow_task_queue_poll_succeed',
  'temporal_workflow_task_queue_poll_empty',
  'temporal_workflow_completed',
  'temporal_workflow_failed',
  'temporal_workflow_canceled',
  'temporal_workflow_continue_as_new',
  'temporal_workflow_endtoend_latency',
  'temporal_activity_execution_failed',
  'temporal_activity_execution_cancelled',
  'temporal_activity_execution_latency',
  'temporal_activity_schedule_to_start_latency',
  'temporal_activity_succeed_endtoend_latency',
  'temporal_activity_poll_no_task',
  'temporal_worker_task_slots_available',
  'temporal_worker_task_slots_used',
  'temporal_worker_start',
  'temporal_num_pollers',
  'temporal_sticky_cache_hit',
  'temporal_sticky_cache_miss',
  'temporal_sticky_cache_size',
  'temporal_sticky_cache_total_forced_eviction',
  'temporal_request',
  'temporal_request_failure',
  'temporal_request_latency',
  'temporal_long_request',
  'temporal_long_request_failure',
  'temporal_long_request_latency',
] as const;
