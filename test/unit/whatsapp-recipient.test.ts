/**
 * Sends to WhatsApp users known only by a business-scoped user id (BSUID): Meta's Messages API
 * takes `recipient` (a BSUID or parent BSUID) instead of `to` (a phone number); `to` wins when
 * both are present. The activity picks the form; the fake Graph API accepts and records it.
 */
import { classifyGraphError, isRetryableGraphError } from '../../lib/graph-errors';
import { whatsAppRecipient } from '../../activities/channels/whatsapp';
import { startFakeGraphApi, type FakeGraphApi } from '../../fakes/graph-api';

const BSUID = 'US.13491208655302741918';

describe('whatsAppRecipient', () => {
  it('addresses a phone-number contact with `to`', () => {
    expect(whatsAppRecipient('16505551234')).toEqual({ to: '16505551234' });
    expect(whatsAppRecipient('16505551234', { phone: null, bsuid: BSUID })).toEqual({ to: '16505551234' });
  });
  it('addresses a BSUID contact with `recipient`', () => {
    expect(whatsAppRecipient(BSUID)).toEqual({ recipient: BSUID });
    expect(whatsAppRecipient('US.ENT.11815799212886844830')).toEqual({ recipient: 'US.ENT.11815799212886844830' });
    expect(whatsAppRecipient(BSUID, { phone: null, bsuid: null })).toEqual({ recipient: BSUID });
  });
  it("prefers the lead's current phone number (Meta's advice; a number change moves it), else its current BSUID", () => {
    expect(whatsAppRecipient(BSUID, { phone: '16505551234', bsuid: BSUID })).toEqual({ to: '16505551234' });
    expect(whatsAppRecipient('16505551234', { phone: '12195555358', bsuid: null })).toEqual({ to: '12195555358' });
    expect(whatsAppRecipient(BSUID, { phone: null, bsuid: 'US.20958472619384756102' })).toEqual({ recipient: 'US.20958472619384756102' });
  });
});

describe('Graph error 131062 (BSUID recipients not supported for this message)', () => {
  it('is permanent: retrying cannot help', () => {
    expect(classifyGraphError(131062)).toBe('permanent');
    expect(isRetryableGraphError(classifyGraphError(131062), 400)).toBe(false);
  });
});

describe('fake Graph API: BSUID recipients', () => {
  let graph: FakeGraphApi;
  beforeEach(async () => {
    graph = await startFakeGraphApi();
  });
  afterEach(async () => {
    await graph.close();
  });
  const send = (body: Record<string, unknown>) =>
    fetch(`${graph.url}/v21.0/106540352242922/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer EAAtest', 'content-type': 'application/json' },
      body: JSON.stringify({ messaging_product: 'whatsapp', recipient_type: 'individual', type: 'text', text: { body: 'hi' }, ...body }),
    });

  it('accepts `recipient` with a BSUID, answers with user_id and records the form', async () => {
    const res = await send({ recipient: BSUID });
    expect(res.status).toBe(200);
    const json = (await res.json()) as { contacts: unknown[]; messages: { id: string }[] };
    expect(json.contacts).toEqual([{ input: BSUID, user_id: BSUID }]);
    expect(graph.sentMessages()[0]).toMatchObject({ to: BSUID, recipientForm: 'recipient' });
  });
  it('lets `to` win over `recipient`', async () => {
    expect((await send({ to: '16505551234', recipient: BSUID })).status).toBe(200);
    expect(graph.sentMessages()[0]).toMatchObject({ to: '16505551234', recipientForm: 'to' });
  });
  it('refuses a `recipient` that is not a BSUID, and a body with neither', async () => {
    expect((await send({ recipient: '16505551234' })).status).toBe(400);
    expect((await send({})).status).toBe(400);
    expect(graph.sentMessages()).toHaveLength(0);
  });
});
