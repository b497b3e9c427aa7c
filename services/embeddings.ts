/**
 * Embeddings from an OpenAI-compatible `POST /v1/embeddings` (OpenAI, OpenRouter, Ollama, vLLM by
 * OPENAI_BASE_URL; without OPENAI_API_KEY `npm run dev` points it at the offline stand-in, whose
 * embeddings are deterministic: fakes/embeddings.ts). Batched; every vector is L2-normalized
 * before it is stored or compared (cosine = dot product).
 */
import OpenAI from 'openai';

export interface EmbeddingSettings {
  baseURL?: string;
  apiKey: string;
  /** OPENAI_EMBEDDING_MODEL */
  model: string;
  /** OPENAI_EMBEDDING_DIMENSIONS (sent as `dimensions`) */
  dimensions: number;
  timeoutMs: number;
  /** Inputs per request (KNOWLEDGE_EMBEDDING_BATCH_SIZE). */
  batchSize: number;
}

export interface Embedder {
  /** `model@dimensions`: what a stored embedding is comparable with. */
  readonly key: string;
  readonly model: string;
  readonly dimensions: number;
  readonly batchSize: number;
  /** One vector per text, in order (several requests when there are more than batchSize texts). */
  embed(texts: string[]): Promise<number[][]>;
}

export function l2normalize(v: ArrayLike<number>): number[] {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  n = Math.sqrt(n);
  return Array.from(v, (x) => (n > 0 ? x / n : 0));
}

export function embeddingKey(model: string, dimensions: number): string {
  return `${model}@${dimensions}`;
}

/** An embedder over the OpenAI package; errors are the package's (OpenAI.APIError for an answer). */
export function createOpenAIEmbedder(settings: EmbeddingSettings): Embedder {
  const client = new OpenAI({ apiKey: settings.apiKey, baseURL: settings.baseURL, timeout: settings.timeoutMs, maxRetries: 1 });
  return createEmbedder(settings, async (input) => {
    const res = await client.embeddings.create({ model: settings.model, input, dimensions: settings.dimensions });
    const out = new Array<number[]>(input.length);
    for (const d of res.data) out[d.index] = d.embedding;
    if (out.some((v) => !Array.isArray(v))) throw new Error(`the embeddings endpoint answered ${res.data.length} vectors for ${input.length} inputs`);
    return out;
  });
}

/** An embedder over any batch function (the eval uses the stand-in directly). */
export function createEmbedder(settings: Pick<EmbeddingSettings, 'model' | 'dimensions' | 'batchSize'>, embedBatch: (texts: string[]) => Promise<number[][]>): Embedder {
  return {
    key: embeddingKey(settings.model, settings.dimensions),
    model: settings.model,
    dimensions: settings.dimensions,
    batchSize: settings.batchSize,
    async embed(texts) {
      const out: number[][] = [];
      for (let i = 0; i < texts.length; i += settings.batchSize) {
        const batch = texts.slice(i, i + settings.batchSize).map((t) => (t.trim() === '' ? ' ' : t));
        for (const v of await embedBatch(batch)) out.push(l2normalize(v));
      }
      return out;
    },
  };
}
