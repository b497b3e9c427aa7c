import OpenAI from 'openai';
import { startFakeGraphApi, type FakeGraphApi } from '../../fakes/graph-api';
import { offlineReply, offlineToolCall, OFFLINE_REPLY_MARKER, startFakeOpenAI, type FakeOpenAI } from '../../fakes/openai';
import { toolDefinitions, validateToolCall } from '../../activities/llm/tools';
import { AGENT_TOOLS } from '../../contract/agent-tools';

const PHONE_ID = '106540352242922';
const TOKEN = 'EAAtesttoken';

interface MetaError {
  error: {
    message: string;
    type: string;
    code: number;
    error_subcode?: number;
    error_data: { messaging_product: string; details: string };
    fbtrace_id: string;
  };
}

async function post(
  url: string,
  body: unknown,
  token: string | null = TOKEN,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function textMessage(to: string, text: string): Record<string, unknown> {
  return { messaging_product: 'whatsapp', recipient_type: 'individual', to, type: 'text', text: { body: text, preview_url: false } };
}

describe('fake Graph API', () => {
  let graph: FakeGraphApi;
  let sendUrl: string;

  beforeEach(async () => {
    graph = await startFakeGraphApi();
    sendUrl = `${graph.url}/v21.0/${PHONE_ID}/messages`;
  });
  afterEach(async () => {
    await graph.close();
  });

  it('listens on 127.0.0.1 with a random port and answers /healthz', async () => {
    expect(graph.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${graph.url}/healthz`);
    expect(res.status).toBe(200);
  });

  it('answers a valid text send with a wamid and records it', async () => {
    const { status, json } = await post(sendUrl, textMessage('15551234567', 'Hello there'));
    expect(status).toBe(200);
    expect(json).toEqual({
      messaging_product: 'whatsapp',
      contacts: [{ input: '15551234567', wa_id: '15551234567' }],
      messages: [{ id: expect.stringMatching(/^wamid\.[A-Za-z0-9]+$/) }],
    });
    expect(graph.requests).toHaveLength(1);
    const rec = graph.requests[0]!;
    expect(rec).toMatchObject({
      method: 'POST',
      path: `/v21.0/${PHONE_ID}/messages`,
      phoneNumberId: PHONE_ID,
      authorization: `Bearer ${TOKEN}`,
      body: { to: '15551234567', text: { body: 'Hello there' } },
      response: { status: 200 },
    });
    expect(graph.sentMessages()).toHaveLength(1);

    const second = await post(sendUrl, textMessage('15551234567', 'Again'));
    const id1 = ((json.messages as { id: string }[])[0] as { id: string }).id;
    const id2 = ((second.json.messages as { id: string }[])[0] as { id: string }).id;
    expect(id2).not.toBe(id1);
  });

  it('accepts template sends', async () => {
    const { status } = await post(sendUrl, {
      messaging_product: 'whatsapp',
      to: '15551234567',
      type: 'template',
      template: { name: 'hello_world', language: { code: 'en_US' } },
    });
    expect(status).toBe(200);
    expect(graph.sentMessages()).toHaveLength(1);
  });

  it('rejects invalid bodies with code 100 like Meta', async () => {
    const bad: unknown[] = [
      { messaging_product: 'whatsapp', type: 'text', text: { body: 'x' } },
      { messaging_product: 'whatsapp', to: '1555', text: 'x' },
      { to: '1555', type: 'text', text: { body: 'x' } },
      { messaging_product: 'whatsapp', to: '1555', type: 'text', text: {} },
      textMessage('1555', 'x'.repeat(4097)),
    ];
    for (const body of bad) {
      const { status, json } = await post(sendUrl, body);
      expect(status).toBe(400);
      const err = (json as unknown as MetaError).error;
      expect(err.code).toBe(100);
      expect(err.type).toBe('OAuthException');
      expect(err.message).toContain('Invalid parameter');
      expect(err.error_data.messaging_product).toBe('whatsapp');
      expect(typeof err.fbtrace_id).toBe('string');
    }
    expect((await post(sendUrl, textMessage('1555', 'x'.repeat(4096)))).status).toBe(200);
    expect(graph.requests).toHaveLength(6);
    expect(graph.sentMessages()).toHaveLength(1);
  });

  it('injected 130429 fails once with Meta error shape, then succeeds', async () => {
    graph.failNext({ code: 130429 });
    const first = await post(sendUrl, textMessage('15551234567', 'hi'));
    expect(first.status).toBe(429);
    expect((first.json as unknown as MetaError).error).toMatchObject({
      code: 130429,
      type: 'OAuthException',
      error_data: { messaging_product: 'whatsapp' },
    });
    const second = await post(sendUrl, textMessage('15551234567', 'hi'));
    expect(second.status).toBe(200);
    expect(graph.requests.map((r) => r.response.status)).toEqual([429, 200]);
    expect(graph.sentMessages()).toHaveLength(1);
  });

  it('error rules match on to/phoneNumberId, honour times and httpStatus', async () => {
    graph.failNext({ code: 131026, to: '19999999999', times: 2, httpStatus: 400, subcode: 2494010 });
    expect((await post(sendUrl, textMessage('15551234567', 'hi'))).status).toBe(200);
    const a = await post(sendUrl, textMessage('19999999999', 'hi'));
    expect(a.status).toBe(400);
    expect((a.json as unknown as MetaError).error).toMatchObject({ code: 131026, error_subcode: 2494010 });
    expect((await post(sendUrl, textMessage('19999999999', 'hi'))).status).toBe(400);
    expect((await post(sendUrl, textMessage('19999999999', 'hi'))).status).toBe(200);

    graph.failNext({ code: 131000, phoneNumberId: 'other', times: Infinity });
    expect((await post(sendUrl, textMessage('15551234567', 'hi'))).status).toBe(200);
    const other = `${graph.url}/v21.0/other/messages`;
    expect((await post(other, textMessage('15551234567', 'hi'))).status).toBe(500);
    expect((await post(other, textMessage('15551234567', 'hi'))).status).toBe(500);
  });

  it('rejects a missing bearer, and unknown tokens once valid tokens are set, with 190', async () => {
    const missing = await post(sendUrl, textMessage('15551234567', 'hi'), null);
    expect(missing.status).toBe(401);
    expect((missing.json as unknown as MetaError).error.code).toBe(190);

    graph.setValidTokens([TOKEN]);
    const wrong = await post(sendUrl, textMessage('15551234567', 'hi'), 'EAAwrong');
    expect(wrong.status).toBe(401);
    expect((wrong.json as unknown as MetaError).error).toMatchObject({ code: 190, type: 'OAuthException' });
    expect((await post(sendUrl, textMessage('15551234567', 'hi'), TOKEN)).status).toBe(200);

    graph.setValidTokens(null);
    expect((await post(sendUrl, textMessage('15551234567', 'hi'), 'anything')).status).toBe(200);
    expect(graph.sentMessages()).toHaveLength(2);
  });

  it('records mark-as-read and typing requests but excludes them from sentMessages()', async () => {
    const read = await post(sendUrl, { messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.INBOUND1' });
    expect(read).toEqual({ status: 200, json: { success: true } });
    const typing = await post(sendUrl, {
      messaging_product: 'whatsapp',
      status: 'read',
      message_id: 'wamid.INBOUND1',
      typing_indicator: { type: 'text' },
    });
    expect(typing.json).toEqual({ success: true });
    // Error rules target user-visible sends by default, so the read receipt is unaffected.
    graph.failNext({ code: 131047 });
    expect((await post(sendUrl, { messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.X' })).status).toBe(200);
    expect((await post(sendUrl, textMessage('15551234567', 'reply'))).status).toBe(400);
    expect((await post(sendUrl, textMessage('15551234567', 'reply'))).status).toBe(200);
    expect(graph.requests).toHaveLength(5);
    expect(graph.sentMessages().map((r) => (r.body as { text: { body: string } }).text.body)).toEqual(['reply']);
  });

  it('waitForSends resolves once enough sends arrive, and times out otherwise', async () => {
    const waiting = graph.waitForSends(2, 5000);
    setTimeout(() => {
      void post(sendUrl, textMessage('1555', 'one')).then(() => post(sendUrl, textMessage('1555', 'two')));
    }, 20);
    const sent = await waiting;
    expect(sent).toHaveLength(2);
    await expect(graph.waitForSends(3, 50)).rejects.toThrow(/waitForSends/);
  });

  it('applies the configured delay and reset() clears state', async () => {
    graph.setDelay(120);
    const started = Date.now();
    expect((await post(sendUrl, textMessage('1555', 'slow'))).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    graph.failNext({ code: 131000, times: Infinity });
    graph.reset();
    expect(graph.requests).toHaveLength(0);
    const t2 = Date.now();
    expect((await post(sendUrl, textMessage('1555', 'fast'))).status).toBe(200);
    expect(Date.now() - t2).toBeLessThan(100);
  });

  it('is controllable over HTTP', async () => {
    const control = async (method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`${graph.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    expect((await control('POST', '/__fake/errors', { code: 131048 })).status).toBe(200);
    expect((await post(sendUrl, textMessage('1555', 'a'))).status).toBe(400);
    expect((await post(sendUrl, textMessage('1555', 'b'))).status).toBe(200);
    const listed = (await (await control('GET', '/__fake/requests')).json()) as { requests: { response: { status: number } }[] };
    expect(listed.requests.map((r) => r.response.status)).toEqual([400, 200]);
    expect((await control('DELETE', '/__fake/requests')).status).toBe(200);
    expect(graph.requests).toHaveLength(0);
    expect((await control('POST', '/__fake/delay', { ms: 0 })).status).toBe(200);
    expect((await control('POST', '/__fake/errors', { nope: true })).status).toBe(400);
  });

  it('answers unknown routes with 404 in the Meta error shape', async () => {
    const res = await fetch(`${graph.url}/v21.0/${PHONE_ID}/nope`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(404);
    const json = (await res.json()) as MetaError;
    expect(json.error.code).toBe(100);
    expect(json.error.type).toBe('OAuthException');
  });

  it('serves media metadata and bytes', async () => {
    graph.setMedia('987654321', Buffer.from('OggS-fake-audio'), 'audio/ogg');
    const meta = await fetch(`${graph.url}/v21.0/987654321`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(meta.status).toBe(200);
    const info = (await meta.json()) as { url: string; mime_type: string; sha256: string; file_size: number; id: string; messaging_product: string };
    expect(info).toMatchObject({ id: '987654321', mime_type: 'audio/ogg', file_size: 15, messaging_product: 'whatsapp' });
    expect(info.url).toBe(`${graph.url}/__fake/media/987654321`);
    const bytes = await fetch(info.url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(bytes.headers.get('content-type')).toBe('audio/ogg');
    expect(Buffer.from(await bytes.arrayBuffer()).toString()).toBe('OggS-fake-audio');
    const other = await fetch(`${graph.url}/v21.0/111`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(((await other.json()) as { mime_type: string }).mime_type).toBe('image/png');
  });
});

describe('fake OpenAI', () => {
  let fake: FakeOpenAI;
  let client: OpenAI;

  beforeEach(async () => {
    fake = await startFakeOpenAI();
    client = new OpenAI({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('exposes a /v1 base URL', () => {
    expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  it('returns scripted replies in order, then the default offline reply', async () => {
    fake.script(['First scripted', 'Second scripted']);
    const ask = (text: string): Promise<OpenAI.Chat.Completions.ChatCompletion> =>
      client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'You are a helpful sales assistant.' },
          { role: 'user', content: text },
        ],
      });
    const a = await ask('hello');
    expect(a.choices[0]?.message.content).toBe('First scripted');
    expect(a).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      model: 'gpt-4o-mini',
      choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', refusal: null } }],
    });
    expect(a.usage?.total_tokens).toBe((a.usage?.prompt_tokens ?? 0) + (a.usage?.completion_tokens ?? 0));
    expect((await ask('again')).choices[0]?.message.content).toBe('Second scripted');
    const c = await ask('Do you ship to Lisbon?');
    expect(c.choices[0]?.message.content).toBe(
      `Thanks for your message! ${OFFLINE_REPLY_MARKER} You said: "Do you ship to Lisbon?"`,
    );
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests[2]).toMatchObject({
      model: 'gpt-4o-mini',
      authorization: 'Bearer test',
      messages: [{ role: 'system' }, { role: 'user', content: 'Do you ship to Lisbon?' }],
    });
  });

  it('uses setReply as the default reply', async () => {
    fake.setReply((req) => `echo:${req.messages.length}`);
    const res = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    expect(res.choices[0]?.message.content).toBe('echo:1');
  });

  it('surfaces an injected 404 model_not_found for one model as an APIError while another model works', async () => {
    fake.failNext({ status: 404, code: 'model_not_found', model: 'gpt-bad' });
    const good = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(good.choices[0]?.message.content).toContain(OFFLINE_REPLY_MARKER);
    let caught: unknown;
    try {
      await client.chat.completions.create({ model: 'gpt-bad', messages: [{ role: 'user', content: 'hi' }] });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OpenAI.APIError);
    const apiErr = caught as InstanceType<typeof OpenAI.APIError>;
    expect(apiErr.status).toBe(404);
    expect(apiErr.code).toBe('model_not_found');
    expect(apiErr.type).toBe('invalid_request_error');
    expect(apiErr).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('answers errors in the OpenAI error shape over plain fetch, and via the control endpoint', async () => {
    const ctl = await fetch(`${fake.url.replace(/\/v1$/, '')}/__fake/errors`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 429 }),
    });
    expect(ctl.status).toBe(200);
    const res = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(429);
    expect(await res.json()).toEqual({
      error: { message: expect.any(String), type: 'requests', param: null, code: 'rate_limit_exceeded' },
    });
    const missingModel = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(missingModel.status).toBe(400);
  });

  it('accepts /chat/completions without /v1 and scripts over HTTP', async () => {
    const root = fake.url.replace(/\/v1$/, '');
    await fetch(`${root}/__fake/script`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ replies: ['via http'] }),
    });
    const res = await fetch(`${root}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const json = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(json.choices[0]?.message.content).toBe('via http');
    const listed = (await (await fetch(`${root}/__fake/requests`)).json()) as { requests: unknown[] };
    expect(listed.requests).toHaveLength(1);
    expect((await fetch(`${root}/healthz`)).status).toBe(200);
  });

  it('streams SSE chunks that the openai package reassembles', async () => {
    fake.script(['Hello from the stream']);
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null | undefined;
    let sawUsage = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) sawUsage = true;
    }
    expect(text).toBe('Hello from the stream');
    expect(finish).toBe('stop');
    expect(sawUsage).toBe(true);
  });

  it('lists models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain('gpt-4o-mini');
  });

  it('fills a json_schema response format with the offline reply', async () => {
    const res = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'price?' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'reply',
          strict: true,
          schema: {
            type: 'object',
            properties: { reply: { type: 'string' }, handoff: { type: 'boolean' }, intent: { type: 'string', enum: ['buy', 'ask'] } },
            required: ['reply', 'handoff', 'intent'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(JSON.parse(res.choices[0]?.message.content ?? '')).toEqual({
      reply: offlineReply([{ role: 'user', content: 'price?' }]),
      handoff: false,
      intent: 'buy',
    });
  });
});

describe('offlineReply', () => {
  it('quotes the last user message briefly and deterministically', () => {
    const msgs = [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: [{ type: 'text', text: 'second   message\nhere' }] },
    ];
    expect(offlineReply(msgs)).toBe(offlineReply(msgs));
    expect(offlineReply(msgs)).toBe(`Thanks for your message! ${OFFLINE_REPLY_MARKER} You said: "second message here"`);
    const long = offlineReply([{ role: 'user', content: 'x'.repeat(500) }]);
    expect(long.length).toBeLessThan(200);
    expect(long).toContain('…');
    expect(offlineReply([])).toContain(OFFLINE_REPLY_MARKER);
  });
});

describe('the offline stand-in calls the agent tools on slash commands (npm run dev)', () => {
  const ctx = {
    stages: ['new', 'qualified', 'won'],
    now: '2026-11-29T10:00:00.000Z',
    knowledge: true,
    assets: [{ name: 'price list', description: 'the 2026 price list', mediaId: 'm1', kind: 'document' as const }],
    followUps: [
      { id: '0b9d6c1e-1111-4c1e-9d6c-1e0b9d6c1e01', at: '2026-12-01T10:00:00.000Z', note: 'ask about the quote' },
      { id: '0b9d6c1e-2222-4c1e-9d6c-1e0b9d6c1e02', at: '2026-12-02T10:00:00.000Z', note: 'send the brochure' },
    ],
  };
  const decode = (encoded: string) => {
    const rest = encoded.replace(/^__tool_call__ /, '');
    const space = rest.indexOf(' ');
    return { name: rest.slice(0, space), args: rest.slice(space + 1) };
  };
  const commands: [string, string][] = [
    ['/human I want a person', 'handoff_to_human'],
    ['/buttons', 'send_buttons'],
    ['/list', 'send_list'],
    ['/media', 'send_media'],
    ['/stage qualified', 'set_stage'],
    ['/remind 90', 'schedule_follow_up'],
    ['/noremind', 'cancel_follow_up'],
    ['/noremind 0b9d6c1e-2222-4c1e-9d6c-1e0b9d6c1e02', 'cancel_follow_up'],
    ['/search battery warranty', 'search_knowledge'],
  ];
  for (const channel of ['whatsapp', 'instagram', 'webchat'] as const) {
    test.each(commands)(`${channel}: %s calls %s with arguments the tool validation accepts`, (command, tool) => {
      const full = { ...ctx, channel };
      const body = { tools: toolDefinitions(AGENT_TOOLS, full), tool_choice: 'auto' };
      const encoded = offlineToolCall(body, [{ role: 'system', content: 'x' }, { role: 'user', content: command }], Date.parse(ctx.now));
      expect(encoded).toBeDefined();
      const { name, args } = decode(encoded!);
      expect(name).toBe(tool);
      const checked = validateToolCall(name, args, AGENT_TOOLS, full);
      expect(checked).toMatchObject({ ok: true });
    });
  }

  test('no call for plain text, a tool not offered, tool_choice none, or right after a tool result', () => {
    const full = { ...ctx, channel: 'whatsapp' as const };
    const all = { tools: toolDefinitions(AGENT_TOOLS, full), tool_choice: 'auto' };
    expect(offlineToolCall(all, [{ role: 'user', content: 'what are your prices?' }])).toBeUndefined();
    expect(offlineToolCall({ tools: toolDefinitions(['handoff_to_human'], full) }, [{ role: 'user', content: '/buttons' }])).toBeUndefined();
    expect(offlineToolCall({ ...all, tool_choice: 'none' }, [{ role: 'user', content: '/buttons' }])).toBeUndefined();
    expect(offlineToolCall(all, [{ role: 'user', content: '/buttons' }, { role: 'assistant', content: null }, { role: 'tool', content: 'ok' }])).toBeUndefined();
    expect(offlineToolCall(all, [{ role: 'user', content: '/search' }])).toBeUndefined();
    // cancel_follow_up is offered only while follow-ups wait
    expect(offlineToolCall({ tools: toolDefinitions(AGENT_TOOLS, { ...full, followUps: [] }) }, [{ role: 'user', content: '/noremind' }])).toBeUndefined();
  });

  test('/noremind cancels the follow-up it names, else all of them', () => {
    const full = { ...ctx, channel: 'whatsapp' as const };
    const body = { tools: toolDefinitions(AGENT_TOOLS, full), tool_choice: 'auto' };
    const args = (text: string) => JSON.parse(decode(offlineToolCall(body, [{ role: 'user', content: text }])!).args) as unknown;
    expect(args('/noremind')).toEqual({ all: true });
    expect(args('/noremind 0b9d6c1e-2222-4c1e-9d6c-1e0b9d6c1e02')).toEqual({ followUpId: '0b9d6c1e-2222-4c1e-9d6c-1e0b9d6c1e02' });
    expect(args('/noremind not-an-id')).toEqual({ all: true });
  });
});
