/**
 * CI check of deploy/: the Grafana dashboard is valid JSON with panels, and every PromQL
 * expression of its panels and of the Prometheus alert rules names only metrics that exist:
 * Parley's registry (lib/metrics.ts), the Temporal SDK's known names, Node's default process
 * metrics, the worker's `parley_worker_sdk_metrics_up` and Prometheus' own `up`.
 *
 *   npx tsx scripts/check-dashboards.ts [dashboard.json] [alerts.yml]
 *
 * (promtool checks the rules' syntax; this checks what they refer to.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parleyMetricNames } from '../lib/metrics';
import { TEMPORAL_SDK_METRIC_NAMES } from '../temporal/sdk-metric-names';

/** PromQL words that look like metric names: functions, aggregations, keywords. */
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'histogram_quantile', 'abs', 'ceil', 'floor', 'round',
  'clamp_min', 'clamp_max', 'clamp', 'absent', 'absent_over_time', 'changes', 'resets', 'vector', 'scalar', 'time',
  'label_replace', 'label_join', 'sort', 'sort_desc', 'sum_over_time', 'avg_over_time', 'max_over_time', 'min_over_time',
  'count_over_time', 'last_over_time', 'predict_linear', 'timestamp', 'sgn', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'inf', 'nan',
]);

/** Every name a check accepts. */
export function knownMetricNames(): Set<string> {
  const names = new Set<string>([...parleyMetricNames(), ...TEMPORAL_SDK_METRIC_NAMES, 'parley_worker_sdk_metrics_up', 'up']);
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults });
  for (const m of defaults.getMetricsAsArray()) names.add(m.name);
  defaults.clear();
  return names;
}

/** Metric names an expression refers to (label matchers, strings, durations and Grafana variables removed). */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\$\{?\w+\}?/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const out = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    const word = m[1]!;
    if (PROMQL_WORDS.has(word) || /^\d/.test(word) || /^(e|s|m|h|d|w|y|ms)$/.test(word)) continue;
    out.add(word);
  }
  return [...out];
}

function isKnown(name: string, known: Set<string>): boolean {
  if (known.has(name)) return true;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && known.has(base);
}

interface Panel {
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

/** Problems of a dashboard's JSON text (empty = fine). */
export function checkDashboard(text: string, known = knownMetricNames()): string[] {
  let json: { title?: unknown; panels?: Panel[] };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (err) {
    return [`not valid JSON: ${(err as Error).message}`];
  }
  const problems: string[] = [];
  if (typeof json.title !== 'string') problems.push('the dashboard has no title');
  const panels: Panel[] = [];
  const walk = (ps: Panel[] | undefined) => {
    for (const p of ps ?? []) {
      panels.push(p);
      walk(p.panels);
    }
  };
  walk(json.panels);
  if (panels.filter((p) => p.type !== 'row').length === 0) problems.push('the dashboard has no panels');
  for (const p of panels) {
    if (p.type === 'row') continue;
    const exprs = (p.targets ?? []).map((t) => t.expr).filter((e): e is string => typeof e === 'string');
    if (exprs.length === 0) problems.push(`panel "${p.title ?? '?'}" has no PromQL expression`);
    for (const expr of exprs) {
      for (const name of metricNamesIn(expr)) if (!isKnown(name, known)) problems.push(`panel "${p.title ?? '?'}": unknown metric ${name} in ${expr}`);
    }
  }
  return problems;
}

/** Problems of the alert rules' expressions (single-line `expr:` values); promtool checks the rest. */
export function checkAlertRuleNames(text: string, known = knownMetricNames()): string[] {
  const problems: string[] = [];
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*(?:-\s*)?expr:\s*(.+)$/.exec(line);
    if (!m) continue;
    n += 1;
    const expr = m[1]!.trim().replace(/^['"]|['"]$/g, '');
    if (expr === '|' || expr === '>') problems.push('write alert expressions on one line (the name check reads them so)');
    for (const name of metricNamesIn(expr)) if (!isKnown(name, known)) problems.push(`alert rule: unknown metric ${name} in ${expr}`);
  }
  if (n === 0) problems.push('no alert rule expressions found');
  return problems;
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..');
  const dashboard = process.argv[2] ?? path.join(root, 'deploy/grafana/parley-dashboard.json');
  const alerts = process.argv[3] ?? path.join(root, 'deploy/prometheus/alerts.yml');
  const known = knownMetricNames();
  const problems = [...checkDashboard(readFileSync(dashboard, 'utf8'), known).map((p) => `${dashboard}: ${p}`), ...checkAlertRuleNames(readFileSync(alerts, 'utf8'), known).map((p) => `${alerts}: ${p}`)];
  for (const p of problems) console.error(p);
  if (problems.length > 0) process.exit(1);
  console.log(`dashboard and alert rules refer only to known metrics (${known.size} names)`);
}
