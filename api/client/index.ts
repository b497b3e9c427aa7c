/**
 * A typed client for the Parley API: openapi-fetch over the types openapi-typescript generates
 * from the OpenAPI document (`npm run openapi` writes api/client/openapi.json and schema.ts).
 *
 *   const parley = createParleyClient({ baseUrl: 'http://localhost:3000', apiKey: process.env.PARLEY_API_KEY });
 *   const { data, error } = await parley.GET('/v1/leads/{id}', { params: { path: { id } } });
 *
 * Paths, parameters, bodies and answers are checked by the compiler; `error` is the API's
 * `{ error: { code, message, issues? } }` body on a 4xx/5xx.
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { paths } from './schema';

export type { components, operations, paths } from './schema';
export type ParleyClient = Client<paths>;

export function createParleyClient(opts: { baseUrl: string; apiKey?: string } & Omit<ClientOptions, 'baseUrl'>): ParleyClient {
  const { apiKey, headers, ...rest } = opts;
  return createClient<paths>({ ...rest, headers: { ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}), ...(headers as Record<string, string> | undefined) } });
}
