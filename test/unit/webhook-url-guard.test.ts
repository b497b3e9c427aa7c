/**
 * The SSRF rules of outbound webhook urls (activities/webhooks/url-guard.ts) in production mode
 * (`allowLocal: false`) and in development/test mode, on the url's form and on the resolved
 * addresses (checked at every delivery attempt), and the Standard Webhooks signature.
 */
import { createHmac } from 'node:crypto';
import { signWebhook } from '../../activities/webhooks/deliver';
import { checkWebhookUrl, checkWebhookUrlForm } from '../../activities/webhooks/url-guard';

const resolvesTo = (...addresses: string[]) => async () => addresses;
const prod = { allowLocal: false };
const dev = { allowLocal: true };

describe('production (https only, public addresses only)', () => {
  test.each([
    ['http://example.com/hook', /https only/],
    ['https://127.0.0.1/hook', /not public/],
    ['https://[::1]/hook', /not public/],
    ['https://10.1.2.3/hook', /not public/],
    ['https://169.254.169.254/latest', /not public/],
    ['https://[::ffff:192.168.0.1]/hook', /not public/],
    ['https://localhost/hook', /not public/],
    ['https://user:pw@example.com/', /credentials/],
    ['gopher://example.com/', /https only/],
  ])('%s is refused by its form', async (url, reason) => {
    const form = checkWebhookUrlForm(url, prod);
    expect(form).toEqual({ ok: false, reason: expect.stringMatching(reason) });
    expect(await checkWebhookUrl(url, { ...prod, resolve: resolvesTo('93.184.216.34') })).toMatchObject({ ok: false });
  });

  test.each([['127.0.0.1'], ['10.0.0.7'], ['172.16.5.4'], ['192.168.1.1'], ['169.254.169.254'], ['100.64.0.1'], ['::1'], ['fe80::1'], ['fd00::1'], ['::ffff:127.0.0.1'], ['64:ff9b::a00:1']])(
    'a host resolving to %s is refused at delivery time (DNS rebinding included)',
    async (address) => {
      expect(checkWebhookUrlForm('https://hooks.example.com/x', prod)).toEqual({ ok: true });
      const v = await checkWebhookUrl('https://hooks.example.com/x', { ...prod, resolve: resolvesTo('93.184.216.34', address) });
      expect(v).toEqual({ ok: false, reason: expect.stringContaining('non-public address') });
    },
  );

  test('a public host is allowed and connected to at the checked address; a host that does not resolve is a transient refusal', async () => {
    expect(await checkWebhookUrl('https://hooks.example.com/x', { ...prod, resolve: resolvesTo('93.184.216.34') })).toEqual({ ok: true, address: '93.184.216.34' });
    const down = await checkWebhookUrl('https://hooks.example.com/x', {
      ...prod,
      resolve: async () => {
        throw new Error('ENOTFOUND');
      },
    });
    expect(down).toMatchObject({ ok: false, transient: true });
  });
});

describe('development and test (http and loopback allowed)', () => {
  test('http and loopback receivers are allowed', async () => {
    expect(await checkWebhookUrl('http://127.0.0.1:8080/hook', dev)).toEqual({ ok: true, address: '127.0.0.1' });
    expect(await checkWebhookUrl('http://localhost:8080/hook', { ...dev, resolve: resolvesTo('127.0.0.1', '::1') })).toEqual({ ok: true, address: '127.0.0.1' });
  });
  test('private and link-local addresses are still refused', async () => {
    expect(checkWebhookUrlForm('http://169.254.169.254/', dev)).toMatchObject({ ok: false });
    expect(await checkWebhookUrl('http://intranet.local/', { ...dev, resolve: resolvesTo('192.168.0.10') })).toMatchObject({ ok: false });
    expect(checkWebhookUrlForm('ftp://127.0.0.1/', dev)).toMatchObject({ ok: false });
  });
});

test('the signature is Standard Webhooks: v1, base64 HMAC-SHA256 over id.timestamp.body with the decoded secret', () => {
  const key = Buffer.alloc(32, 7);
  const secret = `whsec_${key.toString('base64')}`;
  const body = '{"type":"lead.created","timestamp":"2026-11-29T18:00:00.000Z","data":{}}';
  const expected = createHmac('sha256', key).update(`evt_1.1764439200.${body}`).digest('base64');
  expect(signWebhook(secret, 'evt_1', 1764439200, body)).toBe(`v1,${expected}`);
});
