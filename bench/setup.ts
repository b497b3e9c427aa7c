/** Benchmark setup through the public API: a tenant with credits, an agent and a WhatsApp channel. */
import http from 'node:http';
import { BENCH_ADMIN_TOKEN } from './stack';

export interface Tenant {
  tenantId: string;
  apiKey: string;
  channelId: string;
  phoneNumberId: string;
}

export const setupAgent = new http.Agent({ keepAlive: false });

export function httpJson(base: string, method: string, route: string, token: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const url = new URL(route, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent: setupAgent,
        host: url.hostname,
        port: url.port,
        method,
        path: url.pathname,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export async function expectStatus(p: Promise<{ status: number; json: unknown }>, status: number, what: string): Promise<Record<string, unknown>> {
  const r = await p;
  if (r.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${r.status}: ${JSON.stringify(r.json)}`);
  return r.json as Record<string, unknown>;
}

/** Tenant, credits, agent and WhatsApp channel, all through the public API. */
export async function setupTenant(apiUrl: string, credits: number): Promise<Tenant> {
  const t = await expectStatus(httpJson(apiUrl, 'POST', '/v1/tenants', BENCH_ADMIN_TOKEN, { name: 'Bench Co' }), 201, 'create tenant');
  const tenantId = String(t.id);
  const apiKey = String(t.apiKey);
  await expectStatus(
    httpJson(apiUrl, 'POST', `/v1/tenants/${tenantId}/credits`, BENCH_ADMIN_TOKEN, { amount: credits, reference: `bench-${tenantId}` }),
    201,
    'top up credits',
  );
  const agent = await expectStatus(
    httpJson(apiUrl, 'POST', '/v1/agents', apiKey, { name: 'Bench bot', systemPrompt: 'You are a helpful sales assistant.', model: 'gpt-4o-mini' }),
    201,
    'create agent',
  );
  const phoneNumberId = String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999));
  const channel = await expectStatus(
    httpJson(apiUrl, 'POST', '/v1/channels', apiKey, {
      platform: 'whatsapp',
      phoneNumberId,
      accessToken: `EAAGbench${Math.random().toString(36).slice(2)}${Date.now()}`,
      verifyToken: `bench-verify-${Date.now()}`,
      agentId: agent.id,
    }),
    201,
    'create channel',
  );
  return { tenantId, apiKey, channelId: String(channel.id), phoneNumberId };
}

