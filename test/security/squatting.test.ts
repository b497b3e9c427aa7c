/**
 * Channel squatting: a tenant may register a WhatsApp phone number id or an Instagram account id
 * only when its access token can read that id through the Graph API (at creation and when the
 * token is replaced); otherwise another business's customers would reach the squatter.
 */
import { randomBytes } from 'node:crypto';
import { createTenant, randomPhoneNumberId, startStack, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const token = () => `EAAG${randomBytes(16).toString('hex')}`;

describe('channel squatting', () => {
  test("registering another business's WhatsApp phone number id is refused with 409; the owner registers it", async () => {
    const squatter = await createTenant(stack);
    const owner = await createTenant(stack);
    const phoneNumberId = randomPhoneNumberId();
    const ownerToken = token();
    stack.graph.setAccountOwner(phoneNumberId, [ownerToken]);
    const body = (accessToken: string, agentId: string) => ({ platform: 'whatsapp', phoneNumberId, accessToken, verifyToken: `verify-${randomBytes(6).toString('hex')}`, agentId });

    const refused = await stack.api.post('/v1/channels').set('authorization', `Bearer ${squatter.apiKey}`).send(body(token(), squatter.agentId)).expect(409);
    expect(refused.body.error.code).toBe('channel_not_owned');
    expect(refused.body.error.message).toMatch(new RegExp(`cannot read WhatsApp phone number id ${phoneNumberId}`));
    // the Graph API was asked with the squatter's token, for that id
    const read = stack.graph.accountRequests.filter((r) => r.phoneNumberId === phoneNumberId);
    expect(read).toHaveLength(1);
    expect(read[0]!.response.status).toBe(400);
    expect(JSON.stringify(refused.body)).not.toMatch(/EAAG/);

    const created = await stack.api.post('/v1/channels').set('authorization', `Bearer ${owner.apiKey}`).send(body(ownerToken, owner.agentId)).expect(201);
    expect(created.body.phoneNumberId).toBe(phoneNumberId);
  });

  test("another business's Instagram account id is refused too", async () => {
    const squatter = await createTenant(stack);
    const igAccountId = `178414${randomPhoneNumberId()}`;
    stack.graph.setAccountOwner(igAccountId, [token()]);
    const r = await stack.api
      .post('/v1/channels')
      .set('authorization', `Bearer ${squatter.apiKey}`)
      .send({ platform: 'instagram', phoneNumberId: igAccountId, accessToken: token(), verifyToken: 'ig-verify-token-1', agentId: squatter.agentId })
      .expect(409);
    expect(r.body.error.code).toBe('channel_not_owned');
    expect(r.body.error.message).toMatch(/Instagram account id/);
    const read = stack.graph.accountRequests.find((x) => x.phoneNumberId === igAccountId);
    expect(read?.path).toMatch(new RegExp(`/v\\d+\\.\\d+/${igAccountId}$`));
  });

  test('an invalid token answers 422; replacing a channel token with one that cannot read its id answers 409 and keeps the old token', async () => {
    const t = await createTenant(stack);
    stack.graph.setValidTokens([t.accessToken]);
    try {
      const bad = await stack.api
        .post('/v1/channels')
        .set('authorization', `Bearer ${t.apiKey}`)
        .send({ platform: 'whatsapp', phoneNumberId: randomPhoneNumberId(), accessToken: token(), verifyToken: 'verify-token-22', agentId: t.agentId })
        .expect(422);
      expect(bad.body.error.code).toBe('access_token_invalid');
    } finally {
      stack.graph.setValidTokens(null);
    }

    const foreignToken = token();
    stack.graph.setAccountOwner(t.phoneNumberId, [t.accessToken]);
    const patch = await stack.api.patch(`/v1/channels/${t.channelId}`).set('authorization', `Bearer ${t.apiKey}`).send({ accessToken: foreignToken }).expect(409);
    expect(patch.body.error.code).toBe('channel_not_owned');
    const creds = await stack.core.services.channels.sendCredentials(t.channelId);
    expect(creds?.accessToken).toBe(t.accessToken);
    const ownToken = token();
    stack.graph.setAccountOwner(t.phoneNumberId, [t.accessToken, ownToken]);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set('authorization', `Bearer ${t.apiKey}`).send({ accessToken: ownToken }).expect(200);
    expect((await stack.core.services.channels.sendCredentials(t.channelId))?.accessToken).toBe(ownToken);
  });
});
