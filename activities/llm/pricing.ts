/**
 * Estimated LLM cost: prices in micro-USD per 1M tokens (input, output).
 * An estimate for spend reports and the daily LLM budget, not a bill: cached-input discounts
 * and provider markups (OpenRouter) are ignored. A model missing from the table is priced at
 * the table's `*` entry (conservative by default), never at 0: a tenant that names a model we
 * do not know must not spend past its daily budget. A deployment sets its own table with
 * `LLM_PRICES` (see `parsePriceTable`), e.g. `{"llama3.1:8b": {"input": 0, "output": 0}}` for
 * a local Ollama model.
 */
import { z } from 'zod';

export interface ModelPrice {
  /** micro-USD per 1M prompt tokens (= USD per 1M tokens × 1e6). */
  inputPerMillion: number;
  /** micro-USD per 1M completion tokens. */
  outputPerMillion: number;
}

/** Model name (lower case, bare) → price; the key `*` prices every model that is not listed. */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

/** The key of the price that applies to models missing from the table. */
export const UNKNOWN_MODEL_KEY = '*';

/**
 * What an unknown model costs unless the deployment says otherwise: 15 / 60 USD per 1M tokens
 * (the list price of OpenAI's most expensive chat models, o1), so an unknown name is
 * over-counted rather than free.
 */
export const UNKNOWN_MODEL_PRICE: ModelPrice = { inputPerMillion: 15_000_000, outputPerMillion: 60_000_000 };

/** OpenAI's public list prices (USD per 1M tokens: gpt-4o-mini 0.15/0.60, gpt-4o 2.50/10, gpt-4.1 2/8, gpt-4.1-mini 0.40/1.60, gpt-4.1-nano 0.10/0.40). */
export const MODEL_PRICES: PriceTable = {
  'gpt-4o-mini': { inputPerMillion: 150_000, outputPerMillion: 600_000 },
  'gpt-4o': { inputPerMillion: 2_500_000, outputPerMillion: 10_000_000 },
  'gpt-4.1': { inputPerMillion: 2_000_000, outputPerMillion: 8_000_000 },
  'gpt-4.1-mini': { inputPerMillion: 400_000, outputPerMillion: 1_600_000 },
  'gpt-4.1-nano': { inputPerMillion: 100_000, outputPerMillion: 400_000 },
  [UNKNOWN_MODEL_KEY]: UNKNOWN_MODEL_PRICE,
};

/** USD per 1M tokens, as providers publish them; at most 10,000 USD per 1M tokens. */
const usdPerMillion = z.number().min(0).max(10_000);
/**
 * `LLM_PRICES`: `{ "<model>": { "input": <USD per 1M prompt tokens>, "output": <USD per 1M completion tokens> }, "*": {...} }`.
 * Entries are merged over the built-in table; `*` replaces the unknown-model price.
 */
export const priceTableInputSchema = z.record(
  z.string().trim().min(1).max(200),
  z.strictObject({ input: usdPerMillion, output: usdPerMillion }),
);

/** Parse a deployment's price table (JSON text) and merge it over the built-in one. Throws with the zod issues. */
export function parsePriceTable(json: string): PriceTable {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  const parsed = priceTableInputSchema.safeParse(raw);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  const table: Record<string, ModelPrice> = { ...MODEL_PRICES };
  for (const [model, p] of Object.entries(parsed.data)) {
    table[bareModel(model)] = { inputPerMillion: Math.round(p.input * 1_000_000), outputPerMillion: Math.round(p.output * 1_000_000) };
  }
  return table;
}

function bareModel(model: string): string {
  const m = model.trim().toLowerCase();
  return m === UNKNOWN_MODEL_KEY ? m : m.replace(/^openai\//, '');
}

/**
 * The price entry of a model name as providers report it: exact, without a provider prefix
 * (`openai/gpt-4o` on OpenRouter) and without a snapshot date (`gpt-4o-mini-2024-07-18`);
 * undefined when the table does not list it.
 */
export function priceOf(model: string, table: PriceTable = MODEL_PRICES): ModelPrice | undefined {
  const bare = bareModel(model);
  if (bare === UNKNOWN_MODEL_KEY) return undefined;
  return table[bare] ?? table[bare.replace(/-\d{4}-\d{2}-\d{2}$/, '')];
}

/** Estimated cost of one call in micro-USD (integer, rounded); an unknown model costs the table's `*` price. */
export function estimateCostMicros(model: string, promptTokens: number, completionTokens: number, table: PriceTable = MODEL_PRICES): number {
  const price = priceOf(model, table) ?? table[UNKNOWN_MODEL_KEY] ?? UNKNOWN_MODEL_PRICE;
  const micros = (Math.max(0, promptTokens) * price.inputPerMillion + Math.max(0, completionTokens) * price.outputPerMillion) / 1_000_000;
  return Math.round(micros);
}
