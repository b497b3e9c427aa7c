/**
 * Estimated LLM cost: list prices in micro-USD per 1M tokens (input, output).
 * An estimate for spend reports, not a bill: cached-input discounts and provider markups
 * (OpenRouter) are ignored. Unknown models cost 0 and are still recorded by the callers.
 */
export interface ModelPrice {
  /** micro-USD per 1M prompt tokens (= USD per 1M tokens × 1e6). */
  inputPerMillion: number;
  /** micro-USD per 1M completion tokens. */
  outputPerMillion: number;
}

/** OpenAI's public list prices (USD per 1M tokens: gpt-4o-mini 0.15/0.60, gpt-4o 2.50/10, gpt-4.1 2/8, gpt-4.1-mini 0.40/1.60, gpt-4.1-nano 0.10/0.40). */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gpt-4o-mini': { inputPerMillion: 150_000, outputPerMillion: 600_000 },
  'gpt-4o': { inputPerMillion: 2_500_000, outputPerMillion: 10_000_000 },
  'gpt-4.1': { inputPerMillion: 2_000_000, outputPerMillion: 8_000_000 },
  'gpt-4.1-mini': { inputPerMillion: 400_000, outputPerMillion: 1_600_000 },
  'gpt-4.1-nano': { inputPerMillion: 100_000, outputPerMillion: 400_000 },
};

/**
 * The price entry of a model name as providers report it: exact, without a provider prefix
 * (`openai/gpt-4o` on OpenRouter) and without a snapshot date (`gpt-4o-mini-2024-07-18`).
 */
export function priceOf(model: string): ModelPrice | undefined {
  const bare = model.trim().toLowerCase().replace(/^openai\//, '');
  return MODEL_PRICES[bare] ?? MODEL_PRICES[bare.replace(/-\d{4}-\d{2}-\d{2}$/, '')];
}

/** Estimated cost of one call in micro-USD (integer, rounded); 0 for an unknown model. */
export function estimateCostMicros(model: string, promptTokens: number, completionTokens: number): number {
  const price = priceOf(model);
  if (!price) return 0;
  const micros = (Math.max(0, promptTokens) * price.inputPerMillion + Math.max(0, completionTokens) * price.outputPerMillion) / 1_000_000;
  return Math.round(micros);
}
