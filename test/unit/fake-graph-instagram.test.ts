import { fitInstagramText } from '../../activities/channels/instagram';
import { startFakeGraphApi, validateInstagramMessageBody, type FakeGraphApi } from '../../fakes/graph-api';

const IG = '17841469035182274';
const USER = '6254873019284751';

describe('fake Graph API: Instagram send API', () => {
  let graph: FakeGraphApi;
  let url: string;
  beforeEach(async () => {
    graph = await startFakeGraphApi();
    url = `${graph.url}/v21.0/${IG}/messages`;
  });
  afterEach(async () => {
    await graph.close();
  });

  async function post(body: unknown, token: string | null = 'IGAAtoken') {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  test('a text send answers { recipient_id, message_id } and is recorded as an Instagram send to the IGSID', async () => {
    const r = await post({ recipient: { id: USER }, message: { text: 'Hello!' }, messaging_type: 'RESPONSE' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ recipient_id: USER, message_id: expect.stringMatching(/^[A-Za-z0-9+/]+$/) });
    expect(graph.instagramSends()).toHaveLength(1);
    expect(graph.sentMessages()[0]).toMatchObject({ channel: 'instagram', to: USER, phoneNumberId: IG, authorization: 'Bearer IGAAtoken' });
    await expect(graph.waitForSends(1, 100)).resolves.toHaveLength(1);
  });

  test('HUMAN_AGENT is the only tag, and only with MESSAGE_TAG', async () => {
    expect((await post({ recipient: { id: USER }, message: { text: 'a human' }, messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' })).status).toBe(200);
    for (const bad of [
      { messaging_type: 'MESSAGE_TAG' },
      { messaging_type: 'MESSAGE_TAG', tag: 'ACCOUNT_UPDATE' },
      { messaging_type: 'RESPONSE', tag: 'HUMAN_AGENT' },
      { messaging_type: 'SPAM' },
    ]) {
      const r = await post({ recipient: { id: USER }, message: { text: 'x' }, ...bad });
      expect([bad, r.status, (r.json.error as { code: number }).code]).toEqual([bad, 400, 100]);
    }
    expect(graph.instagramSends()).toHaveLength(1);
  });

  test('text over 1000 bytes, a missing recipient or message are refused like Meta does', async () => {
    expect(validateInstagramMessageBody({ recipient: { id: USER }, message: { text: 'é'.repeat(501) } })).toMatch(/1000 bytes/);
    expect(validateInstagramMessageBody({ recipient: { id: USER }, message: { text: 'é'.repeat(500) } })).toBeNull();
    expect(validateInstagramMessageBody({ message: { text: 'x' } })).toMatch(/recipient/);
    expect(validateInstagramMessageBody({ recipient: { id: USER } })).toMatch(/message/);
    expect(validateInstagramMessageBody({ recipient: { id: USER }, sender_action: 'typing_on' })).toBeNull();
  });

  test('sender actions succeed but are not user-visible sends; error rules match on the IGSID', async () => {
    expect((await post({ recipient: { id: USER }, sender_action: 'mark_seen' })).json).toEqual({ recipient_id: USER });
    expect(graph.sentMessages()).toHaveLength(0);
    graph.failNext({ code: 10, subcode: 2534022, to: USER, message: 'This message is sent outside of allowed window.' });
    const r = await post({ recipient: { id: USER }, message: { text: 'late' } });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 10, error_subcode: 2534022 });
    expect((await post({ recipient: { id: USER }, message: { text: 'now' } })).status).toBe(200);
  });

  test('Instagram CDN urls serve media without a bearer; the Graph media download still needs one', async () => {
    graph.setMedia('asset-1', Buffer.from('jpegbytes'), 'image/jpeg');
    const cdn = await fetch(graph.igCdnUrl('asset-1'));
    expect(cdn.status).toBe(200);
    expect(Buffer.from(await cdn.arrayBuffer()).toString()).toBe('jpegbytes');
    expect((await fetch(`${graph.url}/__fake/media/asset-1`)).status).toBe(401);
  });
});

describe('fitInstagramText', () => {
  test('keeps a text within 1000 bytes as it is; cuts a longer one at a word, within the limit', () => {
    expect(fitInstagramText('short reply')).toBe('short reply');
    const long = 'word '.repeat(400);
    const cut = fitInstagramText(long);
    expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(1000);
    expect(cut.endsWith('word…')).toBe(true);
    // multi-byte characters are never split
    const emoji = '😀'.repeat(400);
    const cutEmoji = fitInstagramText(emoji);
    expect(Buffer.byteLength(cutEmoji, 'utf8')).toBeLessThanOrEqual(1000);
    expect(cutEmoji).toMatch(/^(😀)+…$/u);
  });
});
