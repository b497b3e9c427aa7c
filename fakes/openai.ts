/**
 * Fake OpenAI Chat Completions API: a real local HTTP server shaped like api.openai.com/v1.
 * Used by tests, the benchmark and as the offline stand-in LLM when no OPENAI_API_KEY is set.
 * It never logs anything.
 *
 * API:
 *   POST /v1/chat/completions (also /chat/completions), `stream: true` supported (SSE)
 *   POST /v1/embeddings: deterministic stand-in embeddings (fakes/embeddings.ts), `dimensions`
 *        honoured (default 1536), `encoding_format` float or base64 (the openai package asks for base64)
 *   GET  /v1/models, GET /v1/models/:id
 * Control endpoints:
 *   GET    /healthz           -> { ok: true }
 *   GET    /__fake/requests   -> { requests: ChatRequestRecord[] }
 *   DELETE /__fake/requests   -> clears the request log
 *   POST   /__fake/script     body { replies: string[] }
 *   POST   /__fake/errors     body OpenAIErrorRule ("times": "Infinity" or -1 for forever)
 *   DELETE /__fake/errors     -> clears injected error rules
 *   POST   /__fake/delay      body { ms }
 *   POST   /__fake/reset      -> reset()
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { standInEmbedding } from './embeddings';

export interface ChatRequestRecord {
  at: string;
  model: string;
  messages: { role: string; content: unknown }[];
  body: unknown;
  authorization?: string;
  /** The request's `max_tokens` (or `max_completion_tokens`), when it set one. */
  maxTokens?: number;
}

export interface OpenAIErrorRule {
  status: number;
  code?: string;
  type?: string;
  message?: string;
  /** How many matching requests fail; default 1. `Infinity` allowed. */
  times?: number;
  /** Only requests for this model fail. */
  model?: string;
  /** Sent as the `retry-after-ms` header (the openai package honours it when retrying). */
  retryAfterMs?: number;
}

/** One `POST /v1/embeddings` the fake answered (or refused by an error rule). */
export interface EmbeddingRequestRecord {
  at: string;
  model: string;
  inputs: number;
  dimensions: number;
}

/** Dimensions of the stand-in's embeddings when a request names none. */
export const FAKE_EMBEDDING_DEFAULT_DIMENSIONS = 1536;

export interface FakeOpenAI {
  /** Base URL to pass as OPENAI_BASE_URL, including the /v1 suffix, e.g. http://127.0.0.1:5555/v1 */
  url: string;
  requests: ChatRequestRecord[];
  /** Embedding requests (batches), in order; cleared by reset(). */
  embeddingRequests: EmbeddingRequestRecord[];
  /** Next completions return these in order, then fall back to the default reply. */
  script(replies: string[]): void;
  /** Default reply function (null = offlineReply). */
  setReply(fn: ((req: ChatRequestRecord) => string) | null): void;
  failNext(rule: OpenAIErrorRule): void;
  setDelay(ms: number): void;
  /** Clears requests, script, reply function, error rules and delay. */
  reset(): void;
  close(): Promise<void>;
}

export interface FakeOpenAIOptions {
  port?: number;
  host?: string;
  delayMs?: number;
}

interface OpenAIErrorBody {
  error: { message: string; type: string; param: null; code: string | null };
}

interface ActiveRule extends OpenAIErrorRule {
  remaining: number;
}

/** Marker contained in every offline reply, so callers can recognise the stand-in. */
export const OFFLINE_REPLY_MARKER = '(offline stand-in reply)';

const TOOL_CALL_PREFIX = '__tool_call__ ';

/**
 * A scripted reply that makes the fake answer with a function call (when the request offers
 * a tool of that name): `fake.script([toolCallReply('handoff_to_human', { reason: '...' })])`.
 */
export function toolCallReply(name: string, args: Record<string, unknown>): string {
  return `${TOOL_CALL_PREFIX}${name} ${JSON.stringify(args)}`;
}

function parseToolCallReply(content: string): { name: string; args: unknown } | undefined {
  if (!content.startsWith(TOOL_CALL_PREFIX)) return undefined;
  const rest = content.slice(TOOL_CALL_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) return undefined;
  try {
    return { name: rest.slice(0, space), args: JSON.parse(rest.slice(space + 1)) as unknown };
  } catch {
    return undefined;
  }
}

export const FAKE_OPENAI_MODELS = ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1-mini', 'gpt-4.1-nano'] as const;

const MAX_BODY_BYTES = 20 * 1024 * 1024;
const QUOTE_MAX_CHARS = 80;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The text of a chat message's content (string, or an array of text parts). */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : ''))
      .filter((t) => t !== '')
      .join(' ');
  }
  return '';
}

/** The default deterministic reply: a friendly canned answer quoting the last user message. */
export function offlineReply(messages: { role: string; content: unknown }[]): string {
  let last: { role: string; content: unknown } | undefined;
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const m = messages[i];
    if (m && m.role === 'user') {
      last = m;
      break;
    }
  }
  const text = contentText(last?.content).replace(/\s+/g, ' ').trim();
  if (text === '') return `Thanks for your message! ${OFFLINE_REPLY_MARKER} How can I help you today?`;
  const quote = text.length > QUOTE_MAX_CHARS ? `${text.slice(0, QUOTE_MAX_CHARS - 1).trimEnd()}…` : text;
  return `Thanks for your message! ${OFFLINE_REPLY_MARKER} You said: "${quote}"`;
}

/**
 * The offline stand-in's tool calls, so `npm run dev` can show the agent tools without a real
 * model: a lead message that starts with one of these commands makes the stand-in call the tool,
 * when the request offers it (the agent declares it) and the model has not just had a tool's
 * result. Anything else gets the canned text reply.
 *   /human [reason]   handoff_to_human
 *   /buttons          send_buttons (three options)
 *   /list             send_list (two sections)
 *   /media            send_media (the first of the agent's assets)
 *   /stage [name]     set_stage (the named stage, else the first one offered)
 *   /remind [minutes] schedule_follow_up (default 60 minutes from now)
 *   /noremind [id]    cancel_follow_up (that follow-up, else all; offered only while some wait)
 *   /search <words>   search_knowledge
 */
export const OFFLINE_TOOL_COMMANDS = ['/human', '/buttons', '/list', '/media', '/stage', '/remind', '/noremind', '/search'] as const;

/** The enum of a function parameter of an offered tool, if it has one. */
function offeredEnum(tool: Record<string, unknown>, param: string): string[] {
  const fn = isRecord(tool.function) ? tool.function : undefined;
  const params = fn && isRecord(fn.parameters) ? fn.parameters : undefined;
  const props = params && isRecord(params.properties) ? params.properties : undefined;
  const p = props && isRecord(props[param]) ? props[param] : undefined;
  return p && Array.isArray(p.enum) ? p.enum.filter((x): x is string => typeof x === 'string') : [];
}

/** The stand-in's tool call for a slash command (see OFFLINE_TOOL_COMMANDS), as `toolCallReply` encodes it; undefined for anything else. */
export function offlineToolCall(body: unknown, messages: { role: string; content: unknown }[], now = Date.now()): string | undefined {
  if (!isRecord(body) || body.tool_choice === 'none' || !Array.isArray(body.tools)) return undefined;
  const last = messages[messages.length - 1];
  if (!last || last.role === 'tool') return undefined;
  let lastUser: string | undefined;
  for (let i = messages.length - 1; i >= 0 && lastUser === undefined; i -= 1) if (messages[i]?.role === 'user') lastUser = contentText(messages[i]!.content).trim();
  const match = /^(\/[a-z]+)(?:\s+(.*))?$/s.exec(lastUser ?? '');
  if (!match) return undefined;
  const [, command, rest = ''] = match;
  const arg = rest.trim().slice(0, 200);
  const offered = (name: string) => (body.tools as unknown[]).find((t): t is Record<string, unknown> => isRecord(t) && isRecord(t.function) && t.function.name === name);
  const call = (name: string, args: Record<string, unknown>) => (offered(name) ? toolCallReply(name, args) : undefined);
  switch (command) {
    case '/human':
      return call('handoff_to_human', { reason: arg || 'the lead asked for a person' });
    case '/buttons':
      return call('send_buttons', { body: 'What would you like to do?', buttons: [{ id: 'prices', title: 'See prices' }, { id: 'demo', title: 'Book a demo' }, { id: 'person', title: 'Talk to a person' }] });
    case '/list':
      return call('send_list', {
        body: 'Pick a topic and we will take it from there.',
        button: 'Topics',
        sections: [
          { title: 'Sales', rows: [{ id: 'prices', title: 'Prices' }, { id: 'demo', title: 'Book a demo' }] },
          { title: 'Support', rows: [{ id: 'help', title: 'Get help', description: 'A person answers' }] },
        ],
      });
    case '/media': {
      const tool = offered('send_media');
      const asset = tool ? offeredEnum(tool, 'asset')[0] : undefined;
      return asset ? call('send_media', { asset }) : undefined;
    }
    case '/stage': {
      const tool = offered('set_stage');
      const stages = tool ? offeredEnum(tool, 'stage') : [];
      const stage = stages.find((x) => x.toLowerCase() === arg.toLowerCase()) ?? (arg || stages[0]);
      return stage ? call('set_stage', { stage }) : undefined;
    }
    case '/remind': {
      const minutes = Math.min(Math.max(Number.parseInt(arg, 10) || 60, 6), 30 * 24 * 60 - 1);
      return call('schedule_follow_up', { at: new Date(now + minutes * 60_000).toISOString(), note: 'the lead asked to be reminded' });
    }
    case '/noremind': {
      const tool = offered('cancel_follow_up');
      const id = tool ? offeredEnum(tool, 'followUpId').find((x) => x === arg) : undefined;
      return call('cancel_follow_up', id ? { followUpId: id } : { all: true });
    }
    case '/search':
      return arg ? call('search_knowledge', { query: arg }) : undefined;
    default:
      return undefined;
  }
}

function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4));
}

function randomId(len: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(len);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

function openaiError(message: string, type: string, code: string | null): OpenAIErrorBody {
  return { error: { message, type, param: null, code } };
}

function defaultErrorFor(status: number, model: string): { message: string; type: string; code: string | null } {
  switch (status) {
    case 400:
      return { message: 'Invalid request.', type: 'invalid_request_error', code: null };
    case 401:
      return { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' };
    case 403:
      return { message: 'You are not allowed to sample from this model', type: 'invalid_request_error', code: null };
    case 404:
      return {
        message: `The model \`${model}\` does not exist or you do not have access to it.`,
        type: 'invalid_request_error',
        code: 'model_not_found',
      };
    case 429:
      return {
        message: `Rate limit reached for ${model} on requests per min (RPM). Please try again in 20ms.`,
        type: 'requests',
        code: 'rate_limit_exceeded',
      };
    case 503:
      return { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', code: null };
    default:
      return status >= 500
        ? { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', code: null }
        : { message: 'Request failed.', type: 'invalid_request_error', code: null };
  }
}

function normalizeTimes(times: unknown): number {
  if (times === undefined || times === null) return 1;
  if (times === 'Infinity' || times === -1 || times === Infinity) return Infinity;
  const n = Number(times);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 1;
}

/**
 * A value that satisfies a JSON schema (for `response_format: json_schema` with the default
 * reply), filling every string with the reply text.
 */
function sampleFromSchema(schema: unknown, root: unknown, text: string, depth = 0): unknown {
  if (!isRecord(schema) || depth > 12) return null;
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')) {
    let target: unknown = root;
    for (const seg of schema.$ref.slice(2).split('/')) target = isRecord(target) ? target[seg] : undefined;
    return sampleFromSchema(target, root, text, depth + 1);
  }
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0) {
      const pick = options.find((o) => !(isRecord(o) && o.type === 'null')) ?? options[0];
      return sampleFromSchema(pick, root, text, depth + 1);
    }
  }
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? type[0];
  if (type === undefined && isRecord(schema.properties)) type = 'object';
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      if (isRecord(schema.properties)) {
        for (const [k, v] of Object.entries(schema.properties)) out[k] = sampleFromSchema(v, root, text, depth + 1);
      }
      return out;
    }
    case 'array': {
      const min = typeof schema.minItems === 'number' ? schema.minItems : 0;
      return Array.from({ length: min }, () => sampleFromSchema(schema.items, root, text, depth + 1));
    }
    case 'string':
      return text;
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 0;
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return text;
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function formatUrl(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const host = opts.host ?? '127.0.0.1';
  let delayMs = Math.max(0, opts.delayMs ?? 0);
  let scripted: string[] = [];
  let replyFn: ((req: ChatRequestRecord) => string) | null = null;
  let rules: ActiveRule[] = [];
  const pendingTimers = new Set<NodeJS.Timeout>();
  const requests: ChatRequestRecord[] = [];
  const embeddingRequests: EmbeddingRequestRecord[] = [];
  let closed = false;

  const sleep = (ms: number): Promise<void> =>
    ms <= 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const t = setTimeout(() => {
            pendingTimers.delete(t);
            resolve();
          }, ms);
          pendingTimers.add(t);
        });

  const takeRule = (model: string): ActiveRule | null => {
    for (const rule of rules) {
      if (rule.model !== undefined && rule.model !== model) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) rules = rules.filter((r) => r !== rule);
      return rule;
    }
    return null;
  };

  const baseHeaders = (): Record<string, string> => ({
    'x-request-id': `req_${randomBytes(16).toString('hex')}`,
    'openai-processing-ms': String(delayMs),
    'openai-version': '2020-10-01',
  });

  const replyFor = (record: ChatRequestRecord): string => {
    const next = scripted.shift();
    if (next !== undefined) return next;
    if (replyFn) return replyFn(record);
    const tool = offlineToolCall(record.body, record.messages);
    if (tool) return tool;
    const text = offlineReply(record.messages);
    const body = record.body;
    const format = isRecord(body) && isRecord(body.response_format) ? body.response_format : undefined;
    if (format?.type === 'json_object') return JSON.stringify({ reply: text });
    if (format?.type === 'json_schema' && isRecord(format.json_schema)) {
      const schema = format.json_schema.schema;
      return JSON.stringify(sampleFromSchema(schema, schema, text));
    }
    return text;
  };

  const handleCompletion = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const at = new Date().toISOString();
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      sendJson(res, 413, openaiError('Request body too large.', 'invalid_request_error', null), baseHeaders());
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw) as unknown;
    } catch {
      await sleep(delayMs);
      sendJson(
        res,
        400,
        openaiError(
          'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)',
          'invalid_request_error',
          null,
        ),
        baseHeaders(),
      );
      return;
    }
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    const obj = isRecord(body) ? body : {};
    const model = typeof obj.model === 'string' ? obj.model : '';
    const messages = Array.isArray(obj.messages)
      ? obj.messages.map((m) => ({
          role: isRecord(m) && typeof m.role === 'string' ? m.role : '',
          content: isRecord(m) ? m.content : undefined,
        }))
      : [];
    const maxTokens = typeof obj.max_tokens === 'number' ? obj.max_tokens : typeof obj.max_completion_tokens === 'number' ? obj.max_completion_tokens : undefined;
    const record: ChatRequestRecord = { at, model, messages, body, ...(authorization !== undefined ? { authorization } : {}), ...(maxTokens !== undefined ? { maxTokens } : {}) };
    requests.push(record);

    const rule = takeRule(model);
    await sleep(delayMs);
    if (rule) {
      const d = defaultErrorFor(rule.status, model);
      const headers = baseHeaders();
      if (rule.retryAfterMs !== undefined) headers['retry-after-ms'] = String(rule.retryAfterMs);
      sendJson(res, rule.status, openaiError(rule.message ?? d.message, rule.type ?? d.type, rule.code ?? d.code), headers);
      return;
    }
    if (!isRecord(body)) {
      sendJson(res, 400, openaiError('Request body must be a JSON object.', 'invalid_request_error', null), baseHeaders());
      return;
    }
    if (model === '') {
      sendJson(res, 400, openaiError('you must provide a model parameter', 'invalid_request_error', null), baseHeaders());
      return;
    }
    if (!Array.isArray(obj.messages) || obj.messages.length === 0) {
      sendJson(
        res,
        400,
        openaiError(
          Array.isArray(obj.messages) ? "[] is too short - 'messages'" : "Missing required parameter: 'messages'.",
          'invalid_request_error',
          Array.isArray(obj.messages) ? null : 'missing_required_parameter',
        ),
        baseHeaders(),
      );
      return;
    }
    if (messages.some((m) => !['system', 'developer', 'user', 'assistant', 'tool', 'function'].includes(m.role))) {
      sendJson(
        res,
        400,
        openaiError(
          "Invalid value for 'messages[].role': expected one of 'system', 'developer', 'user', 'assistant', 'tool' or 'function'.",
          'invalid_request_error',
          'invalid_value',
        ),
        baseHeaders(),
      );
      return;
    }

    const n = typeof obj.n === 'number' && obj.n >= 1 ? Math.min(Math.floor(obj.n), 8) : 1;
    const contents = Array.from({ length: n }, () => replyFor(record));
    const promptTokens = messages.reduce((sum, m) => sum + 4 + estimateTokens(contentText(m.content)), 3);
    const completionTokens = contents.reduce((sum, c) => sum + estimateTokens(c), 0);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
    const id = `chatcmpl-${randomId(29)}`;
    const created = Math.floor(Date.now() / 1000);
    const systemFingerprint = 'fp_fake0000';

    if (obj.stream === true) {
      if (res.destroyed) return;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        ...baseHeaders(),
      });
      const includeUsage = isRecord(obj.stream_options) && obj.stream_options.include_usage === true;
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): void => {
        const payload = {
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          service_tier: 'default',
          system_fingerprint: systemFingerprint,
          choices,
          ...(includeUsage ? { usage: null } : {}),
          ...extra,
        };
        res.write(`data: ${JSON.stringify(payload)}\n\n`);
      };
      contents.forEach((content, index) => {
        chunk([{ index, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]);
        for (const piece of content.match(/\S+\s*|\s+/g) ?? []) {
          chunk([{ index, delta: { content: piece }, logprobs: null, finish_reason: null }]);
        }
        chunk([{ index, delta: {}, logprobs: null, finish_reason: 'stop' }]);
      });
      if (includeUsage) chunk([], { usage });
      res.end('data: [DONE]\n\n');
      return;
    }

    sendJson(
      res,
      200,
      {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: contents.map((content, index) => {
          const call = parseToolCallReply(content);
          // `tool_choice: "none"` (or no such tool offered): the model writes text, as OpenAI's does
          const offered = obj.tool_choice !== 'none' && Array.isArray(obj.tools) && obj.tools.some((t) => isRecord(t) && isRecord(t.function) && t.function.name === call?.name);
          if (call && offered) {
            return {
              index,
              message: {
                role: 'assistant',
                content: null,
                refusal: null,
                annotations: [],
                tool_calls: [{ id: `call_${randomId(24)}`, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.args) } }],
              },
              logprobs: null,
              finish_reason: 'tool_calls',
            };
          }
          return { index, message: { role: 'assistant', content, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' };
        }),
        usage,
        service_tier: 'default',
        system_fingerprint: systemFingerprint,
      },
      baseHeaders(),
    );
  };

  const modelObject = (id: string): Record<string, unknown> => ({ id, object: 'model', created: 1715367049, owned_by: 'system' });

  const handleEmbeddings = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      sendJson(res, 400, openaiError('We could not parse the JSON body of your request.', 'invalid_request_error', null), baseHeaders());
      return;
    }
    const obj = isRecord(body) ? body : {};
    const model = typeof obj.model === 'string' ? obj.model : '';
    const input = typeof obj.input === 'string' ? [obj.input] : Array.isArray(obj.input) && obj.input.every((x) => typeof x === 'string') ? (obj.input as string[]) : undefined;
    if (!model || !input || input.length === 0 || input.length > 2048) {
      sendJson(res, 400, openaiError("'input' must be a string or a non-empty array of at most 2048 strings, and 'model' is required.", 'invalid_request_error', null), baseHeaders());
      return;
    }
    const dimensions = typeof obj.dimensions === 'number' && Number.isInteger(obj.dimensions) && obj.dimensions >= 1 ? Math.min(obj.dimensions, 4096) : FAKE_EMBEDDING_DEFAULT_DIMENSIONS;
    embeddingRequests.push({ at: new Date().toISOString(), model, inputs: input.length, dimensions });
    await sleep(delayMs);
    const rule = takeRule(model);
    if (rule) {
      const d = defaultErrorFor(rule.status, model);
      const headers: Record<string, string> = { ...baseHeaders(), ...(rule.retryAfterMs !== undefined ? { 'retry-after-ms': String(rule.retryAfterMs) } : {}) };
      sendJson(res, rule.status, openaiError(rule.message ?? d.message, rule.type ?? d.type, rule.code ?? d.code), headers);
      return;
    }
    const base64 = obj.encoding_format === 'base64';
    const data = input.map((text, index) => {
      const v = standInEmbedding(text, dimensions);
      const embedding = base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
      return { object: 'embedding', index, embedding };
    });
    const tokens = input.reduce((sum, t) => sum + estimateTokens(t), 0);
    sendJson(res, 200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } }, baseHeaders());
  };

  const handleControl = async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const readJson = async (): Promise<Record<string, unknown> | null> => {
      const raw = await readBody(req);
      if (raw.trim() === '') return {};
      try {
        const v = JSON.parse(raw) as unknown;
        return isRecord(v) ? v : null;
      } catch {
        return null;
      }
    };
    if (path === '/__fake/requests' && method === 'GET') {
      sendJson(res, 200, { requests });
      return true;
    }
    if (path === '/__fake/requests' && method === 'DELETE') {
      requests.length = 0;
      sendJson(res, 200, { ok: true });
      return true;
    }
    if (path === '/__fake/script' && method === 'POST') {
      const body = await readJson();
      const replies = body?.replies;
      if (!Array.isArray(replies) || !replies.every((r) => typeof r === 'string')) {
        sendJson(res, 400, { ok: false, error: 'body must be { replies: string[] }' });
        return true;
      }
      api.script(replies as string[]);
      sendJson(res, 200, { ok: true, queued: scripted.length });
      return true;
    }
    if (path === '/__fake/errors' && method === 'POST') {
      const body = await readJson();
      if (!body || typeof body.status !== 'number') {
        sendJson(res, 400, { ok: false, error: 'body must be an OpenAIErrorRule with a numeric status' });
        return true;
      }
      api.failNext(body as unknown as OpenAIErrorRule);
      sendJson(res, 200, { ok: true, rules: rules.length });
      return true;
    }
    if (path === '/__fake/errors' && method === 'DELETE') {
      rules = [];
      sendJson(res, 200, { ok: true });
      return true;
    }
    if (path === '/__fake/delay' && method === 'POST') {
      const body = await readJson();
      const ms = Number(body?.ms);
      if (!Number.isFinite(ms) || ms < 0) {
        sendJson(res, 400, { ok: false, error: 'body must be { ms: number >= 0 }' });
        return true;
      }
      api.setDelay(ms);
      sendJson(res, 200, { ok: true, ms });
      return true;
    }
    if (path === '/__fake/reset' && method === 'POST') {
      api.reset();
      sendJson(res, 200, { ok: true });
      return true;
    }
    return false;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';

    if (path === '/healthz' && method === 'GET') {
      sendJson(res, 200, { ok: true, fake: 'openai' });
      return;
    }
    if (path.startsWith('/__fake/') && (await handleControl(req, res, path))) return;

    const apiPath = path.startsWith('/v1/') ? path.slice(3) : path;
    if (apiPath === '/chat/completions' && method === 'POST') {
      await handleCompletion(req, res);
      return;
    }
    if (apiPath === '/embeddings' && method === 'POST') {
      await handleEmbeddings(req, res);
      return;
    }
    if (apiPath === '/models' && method === 'GET') {
      await sleep(delayMs);
      sendJson(res, 200, { object: 'list', data: FAKE_OPENAI_MODELS.map(modelObject) }, baseHeaders());
      return;
    }
    const modelMatch = /^\/models\/(.+)$/.exec(apiPath);
    if (modelMatch && method === 'GET') {
      await sleep(delayMs);
      const id = decodeURIComponent(modelMatch[1] ?? '');
      if ((FAKE_OPENAI_MODELS as readonly string[]).includes(id)) sendJson(res, 200, modelObject(id), baseHeaders());
      else {
        const d = defaultErrorFor(404, id);
        sendJson(res, 404, openaiError(d.message, d.type, d.code), baseHeaders());
      }
      return;
    }
    req.resume();
    sendJson(res, 404, openaiError(`Invalid URL (${method} ${url.pathname})`, 'invalid_request_error', null), baseHeaders());
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        sendJson(res, 500, openaiError('The server had an error while processing your request.', 'server_error', null));
      } else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const api: FakeOpenAI = {
    url: `${formatUrl(host, port)}/v1`,
    requests,
    embeddingRequests,
    script(replies: string[]): void {
      scripted.push(...replies);
    },
    setReply(fn: ((req: ChatRequestRecord) => string) | null): void {
      replyFn = fn;
    },
    failNext(rule: OpenAIErrorRule): void {
      rules.push({ ...rule, remaining: normalizeTimes(rule.times) });
    },
    setDelay(ms: number): void {
      delayMs = Math.max(0, Number.isFinite(ms) ? ms : 0);
    },
    reset(): void {
      requests.length = 0;
      embeddingRequests.length = 0;
      scripted = [];
      replyFn = null;
      rules = [];
      delayMs = 0;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return api;
}
