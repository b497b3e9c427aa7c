/**
 * The README's saved views ("Web UI for sales ops" → "Saved views") are read from the README
 * itself and run against Temporal's visibility (list and count), so the documented queries and
 * what the server accepts cannot drift apart. With a tenant's id in place of TENANT_ID, "needs a
 * human" and "window open" find exactly that tenant's leads in those states.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LeadMessage } from '../../contract/workflow-names';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

interface View {
  name: string;
  query: string;
}

/** The `sql` blocks of the README's "Saved views" section: `-- name` then the query. */
function savedViews(readme: string): View[] {
  const start = readme.indexOf('\n### Saved views\n');
  if (start < 0) throw new Error('README has no "### Saved views" section');
  const rest = readme.slice(start + 1);
  const end = rest.slice(4).search(/\n##+ /);
  const section = end < 0 ? rest : rest.slice(0, end + 4);
  const views: View[] = [];
  for (const block of section.matchAll(/```sql\n([\s\S]*?)```/g)) {
    let name = '';
    for (const line of block[1]!.split('\n').map((l) => l.trim()).filter(Boolean)) {
      if (line.startsWith('--')) name = line.replace(/^--\s*/, '');
      else views.push({ name, query: line });
    }
  }
  return views;
}

const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
const views = savedViews(readme);
const view = (prefix: string) => {
  const v = views.find((x) => x.name.startsWith(prefix));
  if (!v) throw new Error(`README's saved views have no "${prefix}"`);
  return v.query;
};

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function ids(query: string): Promise<string[]> {
  const out: string[] = [];
  for await (const wf of stack.temporal.client.workflow.list({ query })) out.push(wf.workflowId);
  return out;
}

test('the README documents the views sales ops asked for, per tenant', () => {
  expect(views.map((v) => v.name.split(' (')[0])).toEqual(expect.arrayContaining(['all leads', 'needs a human', 'window open', 'hot leads', 'dead letters']));
  for (const v of views) expect(v.query).toMatch(/WorkflowType = 'leadConversation' AND (TenantId = 'TENANT_ID'|ChannelAccountId = 'CHANNEL_ID')/);
});

test('a query the server cannot run is an error (so a wrong view in the README fails its test)', async () => {
  await expect(stack.temporal.client.workflow.count("WorkflowType = 'leadConversation' AND LeadMood = 'human'")).rejects.toThrow();
  await expect(stack.temporal.client.workflow.count("WorkflowType = 'leadConversation' AND LeadScore >= 'high'")).rejects.toThrow();
});

test.each(views.map((v) => [v.name, v.query]))('"%s" runs as written: %s', async (_name, query) => {
  await expect(stack.temporal.client.workflow.count(query)).resolves.toMatchObject({ count: expect.any(Number) });
  await expect(ids(query)).resolves.toEqual(expect.any(Array));
});

test("with a tenant's id, each view finds that tenant's leads in that state and no one else's", async () => {
  const [t, other] = [await createTenant(stack, { credits: 10 }), await createTenant(stack, { credits: 10 })];
  const [human, open, foreign] = [randomWaId(), randomWaId(), randomWaId()];
  await postWebhook(stack, textWebhook(t.phoneNumberId, human, 'I want to talk to someone')).expect(200);
  await postWebhook(stack, textWebhook(t.phoneNumberId, open, 'What are your prices?')).expect(200);
  await postWebhook(stack, textWebhook(other.phoneNumberId, foreign, 'Hello')).expect(200);
  const [humanId, openId, foreignId] = [stack.leadWorkflowId(t.channelId, human), stack.leadWorkflowId(t.channelId, open), stack.leadWorkflowId(other.channelId, foreign)];
  await waitFor(() => stack.graph.sentMessages().filter((r) => [human, open, foreign].includes((r.body as { to: string }).to)).length === 3, { what: 'three AI replies' });
  await stack.temporal.client.workflow.getHandle(humanId).executeUpdate(LeadMessage.handOff, { args: [{}] });

  const forTenant = (q: string, tenantId = t.tenantId) => q.replace("'TENANT_ID'", `'${tenantId}'`);
  // the window view with now in place of the README's example time
  const windowOpen = (tenantId?: string) => forTenant(view('window open'), tenantId).replace(/'\d{4}-\d\d-\d\dT[^']*'/, `'${new Date().toISOString()}'`);
  await waitFor(async () => (await ids(forTenant(view('needs a human')))).length === 1 && (await ids(windowOpen())).length === 2, { what: 'visibility to catch up', timeoutMs: 30_000 });
  expect(await ids(forTenant(view('needs a human')))).toEqual([humanId]);
  expect((await ids(windowOpen())).sort()).toEqual([humanId, openId].sort());
  expect((await ids(forTenant(view('all leads')))).sort()).toEqual([humanId, openId].sort());
  expect(await ids(forTenant(view('hot leads')))).toEqual([]);
  expect(await ids(forTenant(view('dead letters')))).toEqual([]);
  // the other tenant's lead is in its own views only
  expect(await ids(forTenant(view('all leads'), other.tenantId))).toEqual([foreignId]);
  expect(await ids(windowOpen(other.tenantId))).toEqual([foreignId]);
  // as written, the README's example time (in the past) counts every lead whose window closes after it
  expect((await ids(forTenant(view('window open')))).sort()).toEqual([humanId, openId].sort());
});
