/**
 * Web chat in a real headless Chromium (Debian's `chromium` package, driven by playwright-core):
 * a visitor opens the page the API serves — or a shop's page on another origin that embeds
 * widget.js — writes, and sees the AI reply (scripted in the fake OpenAI) streamed back.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium chromium-driver`). Without it the tests
 * are skipped with a warning, except under CI (env CI set), where that is a failure.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { contentText, offlineReply } from '../../fakes/openai';
import { createTenant, startStack, waitFor, type Stack } from '../support/stack';

const CHROMIUM = process.env.PARLEY_CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const INSTALL_HINT = `install it with: apt-get install -y chromium chromium-driver (or set PARLEY_CHROMIUM_PATH)`;

jest.setTimeout(120_000);

if (!haveChromium && !process.env.CI) {
  console.warn(`\n*** test/e2e/webchat-browser.test.ts SKIPPED: ${CHROMIUM} not found; ${INSTALL_HINT} ***\n`);
}
const describeBrowser = haveChromium || process.env.CI ? describe : describe.skip;

describeBrowser('web chat in a real browser', () => {
  let stack: Stack;
  let api: http.Server;
  let apiUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`CI: ${CHROMIUM} is missing, so the browser end-to-end test cannot run; ${INSTALL_HINT}`);
    stack = await startStack({ WEBCHAT_POLL_MS: '100' });
    api = http.createServer(stack.app);
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
    api?.closeAllConnections();
    await new Promise((resolve) => (api ? api.close(resolve) : resolve(undefined)));
    await stack?.stop();
  });

  async function webChatChannel(extra: Record<string, unknown> = {}): Promise<string> {
    const t = await createTenant(stack, { credits: 10 });
    const ch = await stack.api.post('/v1/channels').set('authorization', `Bearer ${t.apiKey}`).send({ platform: 'webchat', agentId: t.agentId, ...extra }).expect(201);
    return ch.body.widgetKey as string;
  }

  /** A page that fails the test on any script error; records every URL it requests. */
  async function newPage(): Promise<{ page: Page; errors: string[]; urls: string[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    const urls: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('request', (r) => urls.push(r.url()));
    return { page, errors, urls };
  }

  /** The visitor token the widget keeps in localStorage (null before the first message). */
  const storedToken = (page: Page, widgetKey: string) =>
    page.evaluate((k) => (globalThis as unknown as { localStorage: { getItem(k: string): string | null } }).localStorage.getItem(`parley.webchat.token.${k}`), widgetKey);

  async function say(page: Page, text: string) {
    await page.locator('[data-parley=input]').fill(text);
    await page.locator('[data-parley=send]').click();
  }

  const replies = (page: Page) => page.locator('.parley-wc-msg[data-direction=outbound]');

  /**
   * The fake LLM answers `answer` when the agent's reply call carries `question` as the latest
   * user message (keyed rather than queued, so no other LLM call can take the scripted reply).
   */
  const scripted = new Map<string, string>();
  function scriptReply(question: string, answer: string) {
    scripted.set(question, answer);
    stack.llm.setReply((req) => {
      const lastUser = req.messages.filter((m) => m.role === 'user').at(-1);
      const text = contentText(lastUser?.content);
      return scripted.get(text) ?? offlineReply(req.messages);
    });
  }

  /** Wait until `text` shows in the chat; on a timeout, say what the page and the server had. */
  async function seeReply(page: Page, text: string) {
    try {
      await page.getByText(text).waitFor({ timeout: 30_000 });
    } catch (err) {
      const shown = await page.locator('.parley-wc-msg').allTextContents().catch(() => []);
      const status = await page.locator('[data-parley=status]').textContent().catch(() => null);
      const llm = stack.llm.requests.slice(-3).map((r) => contentText(r.messages.filter((m) => m.role === 'user').at(-1)?.content));
      throw new Error(`reply "${text}" not shown: ${(err as Error).message}\npage messages: ${JSON.stringify(shown)}\nstatus: ${status}\nlast LLM questions: ${JSON.stringify(llm)}`);
    }
  }

  test('the hosted page: a visitor writes and sees the AI reply; it survives a dropped stream and a reload', async () => {
    const widgetKey = await webChatChannel();
    const { page, errors, urls } = await newPage();
    await page.goto(`${apiUrl}/webchat/${widgetKey}`);
    await page.locator('[data-parley=input]').waitFor();
    // no visitor and no stream before the visitor writes
    await new Promise((r) => setTimeout(r, 300));
    expect(await storedToken(page, widgetKey)).toBeNull();
    expect(urls.filter((u) => u.includes('/visitors') || u.includes('/stream'))).toEqual([]);

    const reply = 'We open at 9 am tomorrow, and yes, we deliver to your area.';
    scriptReply('When do you open tomorrow?', reply);
    await say(page, 'When do you open tomorrow?');
    await seeReply(page, reply);
    expect(await replies(page).allTextContents()).toEqual([reply]);
    const mine = page.locator('.parley-wc-msg[data-direction=inbound]');
    expect(await mine.allTextContents()).toEqual(['When do you open tomorrow?']);
    await waitFor(async () => (await mine.getAttribute('data-state')) === 'delivered', { what: 'own message confirmed by the stream' });
    // the LLM saw what the visitor typed
    expect(JSON.stringify(stack.llm.requests.at(-1)!.messages)).toContain('When do you open tomorrow?');

    // the stream drops (proxy restart, network blip): the widget reconnects and carries on, without repeats
    api.closeAllConnections();
    const second = 'Our address is 12 Harbour Street.';
    scriptReply('Where are you?', second);
    await say(page, 'Where are you?');
    await seeReply(page, second);
    expect(await replies(page).allTextContents()).toEqual([reply, second]);

    // a reload keeps the anonymous visitor (its server-signed token in localStorage) and shows the conversation from history
    const token = await storedToken(page, widgetKey);
    expect(token).toMatch(/^vt1\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    await page.reload();
    await seeReply(page, second);
    expect(await page.locator('.parley-wc-msg').allTextContents()).toEqual(['When do you open tomorrow?', reply, 'Where are you?', second]);
    expect(await storedToken(page, widgetKey)).toBe(token);
    // the token never went into a URL (it travels in the Authorization header)
    const [, nonce, sig] = token!.split('.') as [string, string, string];
    expect(urls.filter((u) => u.includes(nonce) || u.includes(sig))).toEqual([]);
    expect(urls.some((u) => u.endsWith('/stream'))).toBe(true);
    // and it is in no log line
    expect(stack.logLines.filter((l) => l.includes(sig))).toEqual([]);
    // the only error the browser reports is the stream we cut
    expect(errors.filter((e) => !e.includes('ERR_INCOMPLETE_CHUNKED_ENCODING') && !e.includes('ERR_NETWORK_CHANGED'))).toEqual([]);
    await page.context().close();
  });

  test('rich replies: buttons, a list and an image render; a click sends the option and the conversation branches on it', async () => {
    // embedded on a shop page (the hosted page's CSP allows https images only; the fake serves http)
    let widgetKey = '';
    const shop = await shopPage(() => widgetKey);
    const t = await createTenant(stack, { credits: 20 });
    const ch = await stack.api.post('/v1/channels').set('authorization', `Bearer ${t.apiKey}`).send({ platform: 'webchat', agentId: t.agentId, allowedOrigins: [shop.origin] }).expect(201);
    widgetKey = ch.body.widgetKey as string;
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const { page, errors } = await newPage();
    await page.goto(`${shop.origin}/`);
    await page.locator('[data-parley=launcher]').click();
    await page.locator('[data-parley=input]').waitFor();
    const first = 'Happy to help with your delivery.';
    scriptReply('I want to change my delivery day', first);
    await say(page, 'I want to change my delivery day');
    await seeReply(page, first);
    const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth)).body.items.find((l: { channelAccountId: string }) => l.channelAccountId === ch.body.id), { what: 'lead' });

    // the operator sends reply buttons, a list and an image through the API
    await stack.api
      .post(`/v1/leads/${lead.id}/messages`)
      .set(auth)
      .send({ interactive: { type: 'button', header: { text: 'Delivery' }, body: 'Which day suits you?', footer: 'Tap one', buttons: [{ id: 'day_tue', title: 'Tuesday' }, { id: 'day_wed', title: 'Wednesday' }] } })
      .expect(201);
    await stack.api
      .post(`/v1/leads/${lead.id}/messages`)
      .set(auth)
      .send({ interactive: { type: 'list', body: 'Or pick a time slot', button: 'Slots', sections: [{ title: 'Morning', rows: [{ id: 'slot_9', title: '9:00', description: 'Before noon' }] }, { title: 'Evening', rows: [{ id: 'slot_18', title: '18:00' }] }] } })
      .expect(201);
    const imageUrl = stack.graph.igCdnUrl('van-photo');
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ media: { type: 'image', link: imageUrl, caption: 'Our delivery van' } }).expect(201);

    const buttons = page.locator('.parley-wc-msg[data-rich=buttons]');
    await buttons.waitFor({ timeout: 30_000 });
    expect(await buttons.locator('.parley-wc-rich-header').textContent()).toBe('Delivery');
    expect(await buttons.locator('[data-parley=option]').allTextContents()).toEqual(['Tuesday', 'Wednesday']);
    expect(await buttons.locator('.parley-wc-rich-footer').textContent()).toBe('Tap one');
    const listMsg = page.locator('.parley-wc-msg[data-rich=list]');
    await listMsg.waitFor();
    expect(await listMsg.locator('.parley-wc-section').allTextContents()).toEqual(['Morning', 'Evening']);
    expect(await listMsg.locator('[data-parley=option]').allTextContents()).toEqual(['9:00Before noon', '18:00']);
    const img = page.locator('.parley-wc-msg[data-rich=image] img');
    await img.waitFor();
    expect(await img.getAttribute('src')).toBe(imageUrl);
    expect(await img.getAttribute('alt')).toBe('Our delivery van');
    await waitFor(() => img.evaluate((e) => (e as unknown as { complete: boolean; naturalWidth: number }).complete && (e as unknown as { naturalWidth: number }).naturalWidth > 0), { what: 'the image loaded' });

    // a click on "Wednesday": it shows as the visitor's message, the LLM gets its title and id and branches on it
    const branch = 'Wednesday it is: your parcel arrives between 10 and 12.';
    scriptReply('[button] Wednesday (id: day_wed)', branch);
    await buttons.locator('[data-option-id=day_wed]').click();
    await seeReply(page, branch);
    const mine = page.locator('.parley-wc-msg[data-direction=inbound]');
    expect(await mine.allTextContents()).toEqual(['I want to change my delivery day', 'Wednesday']);
    expect(await buttons.locator('[data-option-id=day_wed]').getAttribute('data-chosen')).toBe('true');
    expect(await buttons.locator('[data-parley=option]').evaluateAll((els) => els.map((e) => (e as unknown as { disabled: boolean }).disabled))).toEqual([true, true]);
    // a list row works the same way
    const slot = 'See you at 18:00.';
    scriptReply('[button] 18:00 (id: slot_18)', slot);
    await listMsg.locator('[data-option-id=slot_18]').click();
    await seeReply(page, slot);

    // a reload renders the rich replies again from history
    await page.reload();
    await page.locator('[data-parley=launcher]').click();
    await seeReply(page, slot);
    expect(await page.locator('.parley-wc-msg[data-rich=buttons] [data-parley=option]').allTextContents()).toEqual(['Tuesday', 'Wednesday']);
    expect(await page.locator('.parley-wc-msg[data-direction=inbound]').allTextContents()).toEqual(['I want to change my delivery day', 'Wednesday', '18:00']);
    expect(errors).toEqual([]);
    await page.context().close();
    await shop.close();
  });

  /** A shop page on another origin (another port) embedding the widget with one tag. */
  async function shopPage(widgetKey: () => string): Promise<{ origin: string; close(): Promise<void> }> {
    const shop = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><html><head><title>Shop</title></head><body><h1>Acme Shop</h1>
<script src="${apiUrl}/webchat/widget.js" data-widget-key="${widgetKey()}" data-title="Acme help" async></script></body></html>`);
    });
    await new Promise<void>((resolve) => shop.listen(0, '127.0.0.1', resolve));
    return {
      origin: `http://127.0.0.1:${(shop.address() as AddressInfo).port}`,
      async close() {
        shop.closeAllConnections();
        await new Promise((resolve) => shop.close(resolve));
      },
    };
  }

  test('embedded with one script tag on a shop page of another origin (CORS), the widget limited to that origin', async () => {
    let widgetKey = '';
    const shop = await shopPage(() => widgetKey);
    try {
      widgetKey = await webChatChannel({ allowedOrigins: [shop.origin] });
      const { page, errors } = await newPage();
      // another port is another origin: every call the widget makes is cross-origin
      await page.goto(`${shop.origin}/`);
      await page.locator('[data-parley=launcher]').click();
      await page.getByText('Acme help').waitFor();
      const reply = 'The blue jacket is in stock in sizes S to XL.';
      scriptReply('Is the blue jacket in stock?', reply);
      await say(page, 'Is the blue jacket in stock?');
      await seeReply(page, reply);
      expect(await replies(page).allTextContents()).toEqual([reply]);
      expect(errors).toEqual([]);
      await page.context().close();
    } finally {
      await shop.close();
    }
  });

  test('a page on an origin the widget does not allow cannot start a conversation', async () => {
    let widgetKey = '';
    const other = await shopPage(() => widgetKey);
    try {
      widgetKey = await webChatChannel({ allowedOrigins: ['https://shop.example'] });
      const { page } = await newPage();
      await page.goto(`${other.origin}/`);
      await page.locator('[data-parley=launcher]').click();
      await say(page, 'Hello?');
      const mine = page.locator('.parley-wc-msg[data-direction=inbound]');
      await waitFor(async () => (await mine.getAttribute('data-state')) === 'failed', { what: 'the message refused' });
      expect(await mine.getAttribute('title')).toMatch(/does not accept requests from this origin/);
      expect(await replies(page).count()).toBe(0);
      await page.context().close();
    } finally {
      await other.close();
    }
  });
});
