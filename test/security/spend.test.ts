/**
 * Spend limits a tenant cannot dodge: a model name missing from the price table is priced
 * conservatively (never 0), so the daily LLM budget trips; every reply call carries a
 * `max_tokens` cap (LLM_MAX_TOKENS).
 */
import { randomBytes } from 'node:crypto';
import { ADMIN_TOKEN, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ LLM_MAX_TOKENS: '300' });
});
afterAll(async () => {
  await stack?.stop();
});

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('spend with an unknown model', () => {
  test('an agent with a model missing from the price table spends until the daily budget trips', async () => {
    const t = await createTenant(stack, { credits: 50, model: `my-private-model-${randomBytes(3).toString('hex')}` });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    // a small budget: a few cents' worth of calls at any real price
    await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ llmDailyBudgetMicros: 5_000 }).expect(200);
    const from = randomWaId();
    const marker = `spend-${randomBytes(4).toString('hex')}`;
    const llmCalls = () => stack.llm.requests.filter((r) => JSON.stringify(r.messages).includes(marker));

    // each message is its own turn (the debounce gap is 150 ms in tests)
    for (let i = 0; i < 6; i++) {
      const before = llmCalls().length;
      await postWebhook(stack, textWebhook(t.phoneNumberId, from, `Question ${i} about ${marker}`)).expect(200);
      const usage = await stack.api.get('/v1/usage').set(auth).expect(200);
      if (usage.body.llm.exceeded) break;
      await waitFor(() => llmCalls().length > before, { timeoutMs: 30_000, what: `llm call ${i}` });
      await waitFor(
        async () => {
          const u = await stack.api.get('/v1/usage').set(auth).expect(200);
          return u.body.llm.spentMicros > 0 && u.body.llm;
        },
        { what: 'spend recorded' },
      );
    }
    const usage = await stack.api.get('/v1/usage').set(auth).expect(200);
    expect(usage.body.llm.spentMicros).toBeGreaterThan(0);
    expect(usage.body.llm.exceeded).toBe(true);

    // over the budget: the next message reaches no LLM
    const callsBefore = llmCalls().length;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, `One more about ${marker}`)).expect(200);
    const leads = await stack.api.get('/v1/leads').set(auth).expect(200);
    const leadId = (leads.body.items[0] as { id: string }).id;
    await waitFor(
      async () => {
        const detail = await stack.api.get(`/v1/leads/${leadId}`).set(auth).expect(200);
        return (detail.body.events as { type: string; data: { type?: string } }[]).find((e) => e.type === 'reply_failed' && e.data.type === 'llm_budget_exceeded');
      },
      { timeoutMs: 30_000, what: 'a turn refused by the budget' },
    );
    expect(llmCalls().length).toBe(callsBefore);

    // every reply call carried the configured max_tokens
    expect(callsBefore).toBeGreaterThan(0);
    for (const r of llmCalls()) expect(r.maxTokens).toBe(300);
  });
});

describe('a reply longer than WhatsApp allows', () => {
  test('an AI reply of 6,000 characters reaches the user shortened to 4,096 at a sentence end, as one message', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    const sentence = 'Our premium plan includes every feature you asked about and more. ';
    stack.llm.setReply(() => sentence.repeat(Math.ceil(6000 / sentence.length)));
    try {
      await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Tell me everything')).expect(200);
      const sends = await waitFor(
        () => {
          const s = stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === from);
          return s.length ? s : undefined;
        },
        { timeoutMs: 30_000, what: 'the reply' },
      );
      expect(sends).toHaveLength(1);
      const body = (sends[0]!.body as { text: { body: string } }).text.body;
      expect(body.length).toBeLessThanOrEqual(4096);
      expect(body.length).toBeGreaterThan(4000);
      expect(body.endsWith('and more.')).toBe(true);
      const auth = { authorization: `Bearer ${t.apiKey}` };
      const leads = await stack.api.get('/v1/leads').set(auth).expect(200);
      const msgs = await stack.api.get(`/v1/leads/${(leads.body.items[0] as { id: string }).id}/messages`).set(auth).expect(200);
      const outbound = (msgs.body.items as { direction: string; body: string; status: string }[]).filter((m) => m.direction === 'outbound');
      expect(outbound).toHaveLength(1);
      expect(outbound[0]!.body).toBe(body);
      const credits = await stack.api.get('/v1/credits').set(auth).expect(200);
      expect(credits.body.balance).toBe(4);
    } finally {
      stack.llm.setReply(null);
    }
  });
});
