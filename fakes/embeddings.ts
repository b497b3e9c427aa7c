/**
 * The offline stand-in's embeddings (fakes/openai.ts `POST /v1/embeddings`, and `npm run
 * eval:knowledge`): deterministic feature hashing, no model. Each text becomes word unigrams
 * (stop words dropped, lightly stemmed), word bigrams and character trigrams of each word (with boundary marks),
 * each hashed (FNV-1a) to one of `dimensions` buckets with a hashed sign, weighted (unigram 1,
 * bigram 0.7, trigram 0.25), with sublinear term frequency, then L2-normalized. Texts that share
 * words or word pieces get a high cosine, which is what lexical-ish retrieval needs offline; it
 * knows no synonyms.
 */

const STOP_WORDS = new Set(
  'a an the and or but if of to in on at by for with from as is are was were be been being it its this that these those i you he she we they me my your our their what which who whom how when where why do does did can could should would will shall may might must not no so than too very just about into over under again there here then once all any both each few more most other some such only own same s t don now has have had having am'.split(
    ' ',
  ),
);

/** FNV-1a, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A light English stem (plural and -ing/-ed endings), so `refunds` and `refund` share their unigram. */
export function lightStem(word: string): string {
  if (word.length <= 3 || /\d/.test(word)) return word;
  if (word.endsWith('ies') && word.length > 4) return `${word.slice(0, -3)}y`;
  if (word.endsWith('ing') && word.length > 5) return word.slice(0, -3);
  if (word.endsWith('ed') && word.length > 4) return word.slice(0, -2);
  if (word.endsWith('es') && /(ss|x|ch|sh)es$/.test(word)) return word.slice(0, -2);
  if (word.endsWith('s') && !word.endsWith('ss') && !word.endsWith('us')) return word.slice(0, -1);
  return word;
}

export function standInTokens(text: string): string[] {
  return (text.toLowerCase().normalize('NFKD').match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => w.length > 0);
}

/** One deterministic, L2-normalized embedding of `text` in `dimensions` dimensions. */
export function standInEmbedding(text: string, dimensions: number): number[] {
  const v = new Float64Array(dimensions);
  const counts = new Map<string, number>();
  const add = (feature: string, weight: number) => counts.set(feature, (counts.get(feature) ?? 0) + weight);
  const words = standInTokens(text);
  const content = words.filter((w) => !STOP_WORDS.has(w)).map(lightStem);
  for (const w of content) {
    add(`u:${w}`, 1);
    const padded = `<${w}>`;
    for (let i = 0; i + 3 <= padded.length; i++) add(`c:${padded.slice(i, i + 3)}`, 0.4);
  }
  for (let i = 0; i + 1 < content.length; i++) add(`b:${content[i]} ${content[i + 1]}`, 0.7);
  for (const [feature, weight] of counts) {
    const h = fnv1a(feature);
    const sign = (fnv1a(`s:${feature}`) & 1) === 1 ? 1 : -1;
    // sublinear term frequency: a word repeated ten times is not ten times the evidence
    v[h % dimensions] = (v[h % dimensions] ?? 0) + sign * (1 + Math.log(weight > 1 ? weight : 1)) * Math.min(weight, 1);
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  return Array.from(v, (x) => (norm > 0 ? x / norm : 0));
}
