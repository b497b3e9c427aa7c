/**
 * The account router behind the Meta webhooks' signature check: one query per lookup whatever
 * the number of ids, a positive cache, a bounded negative cache consulted only for bodies not
 * yet trusted, and refusals Temporal gives for an item's own content.
 */
import { Writable } from 'node:stream';
import type { Response } from 'express';
import { acceptAll, createAccountRouter, unlessRefused, type DroppedItem } from '../../api/webhooks/meta-receiver';
import { createLogger } from '../../lib/logger';
import type { ChannelRouting } from '../../services/channels';

function fakeChannels(known: string[]) {
  const calls: string[][] = [];
  return {
    calls,
    async routingsByAccountIds(_platform: string, ids: readonly string[]) {
      calls.push([...ids]);
      const out = new Map<string, ChannelRouting>();
      for (const id of ids) if (known.includes(id)) out.set(id, { id: `ch-${id}`, tenantId: 't', platform: 'whatsapp', phoneNumberId: id, agentId: 'a' });
      return out;
    },
  };
}

describe('createAccountRouter', () => {
  it('looks up every uncached id in one query and answers repeats from memory', async () => {
    const channels = fakeChannels(['1', '2']);
    const router = createAccountRouter(channels, 'whatsapp', { ttlMs: 60_000 });
    const first = await router.lookup(['1', '2', '3', '4'], { trusted: false });
    expect([...first.entries()].map(([id, r]) => [id, r?.id])).toEqual([['1', 'ch-1'], ['2', 'ch-2'], ['3', undefined], ['4', undefined]]);
    expect(channels.calls).toEqual([['1', '2', '3', '4']]);
    // known ids from the positive cache, unknown ones from the negative cache: no query
    await router.lookup(['1', '2', '3', '4'], { trusted: false });
    expect(channels.calls.length).toBe(1);
    expect(router.cachedOnly(['1', '2'])?.size).toBe(2);
    expect(router.cachedOnly(['1', '3'])).toBeUndefined();
  });

  it('a trusted body never takes "unknown" from the negative cache (a channel registered a moment ago)', async () => {
    const known: string[] = [];
    const channels = fakeChannels(known);
    const router = createAccountRouter(channels, 'whatsapp', { ttlMs: 60_000 });
    expect((await router.lookup(['9'], { trusted: false })).get('9')).toBeUndefined();
    known.push('9');
    expect((await router.lookup(['9'], { trusted: false })).get('9')).toBeUndefined(); // still cached as unknown
    expect((await router.lookup(['9'], { trusted: true })).get('9')?.id).toBe('ch-9');
  });

  it('forgets unknown ids after their time and keeps the negative cache bounded', async () => {
    const channels = fakeChannels([]);
    const router = createAccountRouter(channels, 'whatsapp', { ttlMs: 60_000, negativeTtlMs: 30, maxEntries: 3 });
    await router.lookup(['a', 'b', 'c', 'd'], { trusted: false });
    await router.lookup(['d'], { trusted: false });
    expect(channels.calls.length).toBe(1);
    await router.lookup(['a'], { trusted: false }); // pushed out by d: looked up again
    expect(channels.calls.length).toBe(2);
    await new Promise((r) => setTimeout(r, 40));
    await router.lookup(['d'], { trusted: false });
    expect(channels.calls.length).toBe(3);
  });

  it('never looks up an id too long to be an account', async () => {
    const channels = fakeChannels([]);
    const router = createAccountRouter(channels, 'whatsapp', { ttlMs: 60_000 });
    expect((await router.lookup(['x'.repeat(65)], { trusted: true })).get('x'.repeat(65))).toBeUndefined();
    expect(channels.calls).toEqual([]);
  });
});

describe('unlessRefused', () => {
  it('drops an item Temporal refuses for its own content and rethrows anything else', async () => {
    const dropped: DroppedItem[] = [];
    const tooLarge = Object.assign(new Error('Failed to signalWithStart Workflow'), { cause: { code: 3, details: 'Blob data size exceeds limit.' } });
    await unlessRefused(Promise.reject(tooLarge), 'message wamid.1', dropped);
    expect(dropped).toEqual([{ item: 'message wamid.1', reason: 'Temporal refused it: Blob data size exceeds limit.' }]);
    const down = Object.assign(new Error('Failed to signalWithStart Workflow'), { cause: { code: 14, details: 'connection refused' } });
    await expect(unlessRefused(Promise.reject(down), 'message wamid.2', dropped)).rejects.toBe(down);
    expect(dropped.length).toBe(1);
  });
});

describe('acceptAll', () => {
  it("answers 503 and logs a database refusal by SQLSTATE, constraint and table, never the statement's parameters", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }) });
    // what drizzle throws: the statement and its parameters (a customer's number) in message, query and params
    const err = Object.assign(new Error('Failed query: insert into contact_identities values ($1)\nparams: 15551234567'), {
      query: 'insert into contact_identities values ($1)',
      params: ['15551234567'],
      cause: Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05', table_name: 'contact_identities' }),
    });
    let status = 0;
    const res = { status: (s: number) => ((status = s), { json: () => undefined }) } as unknown as Response;
    expect(await acceptAll([Promise.resolve(), Promise.reject(err)], res, log)).toBe(false);
    expect(status).toBe(503);
    const logged = lines.join('');
    expect(logged).toContain('22P05');
    expect(logged).not.toContain('15551234567');
  });
});
