/**
 * The Temporal Web UI as sales ops see it, in a real headless Chromium (Debian's `chromium`,
 * driven by playwright-core): a Temporal dev server WITH its Web UI, started like `npm run dev`
 * starts it (`--ui-codec-endpoint` pointing at Parley's codec server, api/routes/codec.ts), and
 * a Parley stack whose API serves that codec route with NODE_ENV=development (the UI has no
 * login: a credential-less request from the UI's origin and a loopback peer is decoded as the
 * admin). A lead writes through the WhatsApp webhook; the lead's page in the UI shows the
 * decoded conversation in the current details, and a person hands the lead off and writes to it
 * through the UI's "Send an Update" dialog. Everything in Temporal is encrypted, so the text
 * can only be on the page if the browser's calls to the codec server worked.
 *
 * Screenshots go to test-output/ (gitignored). `PARLEY_DOCS_SCREENSHOT=1` also writes
 * docs/web-ui-lead.png, the README's picture.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium chromium-driver`). Without it the test is
 * skipped with a warning, except under CI (env CI set), where that is a failure.
 */
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ENCRYPTED_ENCODING } from '../../temporal/payload-codec';
import { freePort, startDevServer, type DevServer } from '../../temporal/dev-server';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

const CHROMIUM = process.env.PARLEY_CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const INSTALL_HINT = `install it with: apt-get install -y chromium chromium-driver (or set PARLEY_CHROMIUM_PATH)`;
const ROOT = path.join(__dirname, '../..');
const OUTPUT_DIR = path.join(ROOT, 'test-output');
const DOCS_SCREENSHOT = path.join(ROOT, 'docs', 'web-ui-lead.png');

jest.setTimeout(180_000);

if (!haveChromium && !process.env.CI) {
  console.warn(`\n*** test/e2e/web-ui-codec-browser.test.ts SKIPPED: ${CHROMIUM} not found; ${INSTALL_HINT} ***\n`);
}
const describeBrowser = haveChromium || process.env.CI ? describe : describe.skip;

describeBrowser('the Temporal Web UI decodes a lead through the codec server', () => {
  let temporal: DevServer;
  let stack: Stack;
  let api: http.Server;
  let apiUrl: string;
  let browser: Browser;
  /** Every call the browser made to the codec server, with its answer's status. */
  const codecCalls: { url: string; status: number }[] = [];

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`CI: ${CHROMIUM} is missing, so the browser end-to-end test cannot run; ${INSTALL_HINT}`);
    // the API's port first: the dev server's UI is told where the codec server is when it starts
    const apiPort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    temporal = await startDevServer({ uiPort: 0, uiCodecEndpoint: `${apiUrl}/codec`, startTimeoutMs: 90_000 });
    stack = await startStack({
      TEMPORAL_ADDRESS: temporal.address,
      // the codec route's development exception (loopback peer, allowed origin, no credentials)
      NODE_ENV: 'development',
      TEMPORAL_UI_ORIGINS: temporal.uiUrl!,
    });
    api = http.createServer(stack.app);
    await new Promise<void>((resolve) => api.listen(apiPort, '127.0.0.1', resolve));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
    api?.closeAllConnections();
    await new Promise((resolve) => (api ? api.close(resolve) : resolve(undefined)));
    await stack?.stop();
    await temporal?.stop();
  });

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1100 } });
    const page = await context.newPage();
    page.on('response', (r) => {
      if (r.url().startsWith(`${apiUrl}/codec/`)) codecCalls.push({ url: r.url(), status: r.status() });
    });
    return page;
  }

  /** More Actions → Send an Update: pick the update by name, type its JSON, submit; the dialog closes when the update completed. */
  async function sendUpdate(page: Page, name: string, json: string): Promise<void> {
    await page.getByRole('button', { name: 'More Actions' }).click();
    await page.getByText('Send an Update', { exact: true }).filter({ visible: true }).first().click();
    const dialog = page.locator('dialog[open]').filter({ hasText: 'Send an Update' });
    await dialog.getByTestId('update-select-button').click();
    await page.getByRole('option', { name, exact: true }).filter({ visible: true }).first().click();
    // the dialog keeps the last input: replace it
    await dialog.locator('.cm-content').click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.insertText(json);
    await dialog.getByTestId('confirm-modal-button').click();
    try {
      await dialog.waitFor({ state: 'hidden', timeout: 30_000 });
    } catch (err) {
      const file = await screenshot(page, `web-ui-update-${name}-FAILED.png`);
      throw new Error(`the Web UI's update ${name} did not complete (screenshot ${file}): ${(await dialog.innerText().catch(() => '')).slice(0, 1000)}\n${(err as Error).message}`);
    }
  }

  async function screenshot(page: Page, name: string): Promise<string> {
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const file = path.join(OUTPUT_DIR, name);
    await page.screenshot({ path: file, fullPage: false });
    return file;
  }

  test("a lead's page shows its decoded conversation; a person hands it off and writes from the UI", async () => {
    const t = await createTenant(stack, { credits: 10 });
    const question = 'How much is the premium plan for a team of five?';
    const answer = 'The premium plan is 49 EUR per seat a month; five seats are 245 EUR.';
    stack.llm.setReply(() => answer);
    const from = randomWaId();
    const workflowId = stack.leadWorkflowId(t.channelId, from);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, question, { name: 'Priya Sharma' })).expect(200);
    await waitFor(() => stack.graph.sentMessages().some((r) => (r.body as { to?: string }).to === from), { what: 'the AI reply', timeoutMs: 60_000 });

    // Temporal holds none of it in clear: the inbound signal's payload is encrypted
    const handle = stack.temporal.client.workflow.getHandle(workflowId);
    const { runId } = await handle.describe();
    const history = await stack.temporal.client.connection.workflowService.getWorkflowExecutionHistory({ namespace: temporal.namespace, execution: { workflowId, runId } });
    const signal = history.history!.events!.find((e) => e.workflowExecutionSignaledEventAttributes)!.workflowExecutionSignaledEventAttributes!;
    expect(Buffer.from(signal.input!.payloads![0]!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(JSON.stringify(history.toJSON())).not.toContain('premium plan');

    const page = await newPage();
    await page.goto(`${temporal.uiUrl}/namespaces/${temporal.namespace}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`);
    // the page opens on the history with the decoded input; the current details are under "User Metadata"
    await page.getByText('contactId').first().waitFor({ timeout: 60_000 });
    await page.getByText('User Metadata', { exact: true }).first().click();
    // the UI renders the details' Markdown in a sandboxed frame: read every frame's text
    const shown = async () => (await Promise.all(page.frames().map((f) => f.locator('body').innerText().catch(() => '')))).join('\n');
    let text = '';
    try {
      text = await waitFor(async () => {
        const all = await shown();
        return all.includes(question) && all.includes(answer) ? all : undefined;
      }, { timeoutMs: 60_000, what: 'the decoded conversation in the current details' });
    } catch (err) {
      const file = await screenshot(page, 'web-ui-lead-FAILED.png');
      throw new Error(`decoded text not on the Web UI page (screenshot ${file}); codec calls: ${JSON.stringify(codecCalls.slice(0, 5))}\npage: ${(await shown()).slice(0, 3000)}\n${(err as Error).message}`);
    }
    // the details panel: the masked lead, its mode and window, the last messages by author
    expect(text).toContain(`Lead ${from.slice(0, 2)}…${from.slice(-4)} on WhatsApp`);
    expect(text).toMatch(/Mode ai \(the AI answers\)/);
    expect(text).toMatch(/Window open until \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(text).toMatch(new RegExp(`Lead: ${question.replace(/[?]/g, '\\?')}`));
    expect(text).toContain(`Bot: ${answer}`);
    // the text came through the codec server, which the browser called from the UI's origin
    expect(codecCalls.some((c) => c.url.includes('/codec/decode') && c.status === 200)).toBe(true);
    expect(codecCalls.filter((c) => c.status !== 200)).toEqual([]);
    // and nothing is left shown encoded
    expect(text).not.toContain(ENCRYPTED_ENCODING);
    expect(text).not.toContain('encryption-key-id');

    // sales ops step in from the same page: "Send an Update" with a small JSON body (encoded by the codec server)
    await sendUpdate(page, 'handOff', '{"reason": "asks for a team discount"}');
    await waitFor(async () => (await stack.temporal.leadState(workflowId))?.mode === 'human', { what: 'the handoff sent from the Web UI' });
    const manual = 'Hi, this is Anna from sales: five seats get 10% off this month.';
    await sendUpdate(page, 'sendManualMessage', JSON.stringify({ text: manual }));
    await waitFor(() => stack.graph.sentMessages().some((r) => (r.body as { to?: string; text?: { body?: string } }).to === from && (r.body as { text?: { body?: string } }).text?.body === manual), { what: 'the manual message sent from the Web UI' });
    const lead = (await stack.api.get('/v1/leads').set('authorization', `Bearer ${t.apiKey}`)).body.items.find((l: { contactId: string }) => l.contactId === from);
    const events = (await stack.api.get(`/v1/leads/${lead.id}/events?limit=50`).set('authorization', `Bearer ${t.apiKey}`).expect(200)).body.items as { type: string; data: Record<string, unknown> }[];
    expect(events.find((e) => e.type === 'mode_changed')?.data).toMatchObject({ to: 'human', source: 'web_ui', reason: 'asks for a team discount' });
    expect(events.some((e) => e.type === 'manual_message_requested' && e.data.source === 'web_ui')).toBe(true);
    expect(codecCalls.some((c) => c.url.includes('/codec/encode') && c.status === 200)).toBe(true);

    // the details follow: a person has the lead, the team's message is in the conversation
    await page.reload();
    await page.getByText('User Metadata', { exact: true }).first().click();
    const after = await waitFor(async () => {
      const all = await shown();
      return all.includes(`Team: ${manual}`) && all.includes('Mode human') ? all : undefined;
    }, { timeoutMs: 60_000, what: 'the details after the updates' }).catch(async (err: Error) => {
      throw new Error(`${err.message} (screenshot ${await screenshot(page, 'web-ui-lead-FAILED.png')})\npage: ${(await shown()).slice(0, 3000)}`);
    });
    expect(after).toContain(`Lead: ${question}`);

    const file = await screenshot(page, 'web-ui-lead.png');
    expect(existsSync(file)).toBe(true);
    if (process.env.PARLEY_DOCS_SCREENSHOT === '1') {
      mkdirSync(path.dirname(DOCS_SCREENSHOT), { recursive: true });
      await page.screenshot({ path: DOCS_SCREENSHOT, fullPage: false });
    }
    await page.context().close();
  });
});
