/**
 * Splitting a document's text into overlapping passages (pure; test/unit/knowledge-chunk.test.ts).
 *
 * - Paragraphs (blank-line separated) are the units; a paragraph longer than `maxChars` is cut into
 *   sentences, and a sentence longer than that at word boundaries.
 * - Units are packed in order into chunks of at most `maxChars` characters; a chunk is closed once
 *   the next unit would overflow it (chunks aim at `targetChars`..`maxChars`, ~800–1200 by default).
 * - Each chunk after the first starts with the end of the previous one, about `overlapChars`
 *   characters (~15 %), taken as whole sentences where they fit, else as the last words: a passage
 *   that straddles a boundary is whole in one of the two chunks when it is shorter than the overlap.
 */

export interface ChunkOptions {
  /** Hard upper bound of a chunk's length, overlap included (default 1200). */
  maxChars?: number;
  /** A chunk is not closed below this length unless the text ends (default 800). */
  targetChars?: number;
  /** Characters of the previous chunk repeated at the start of the next (default 180, 15 % of 1200). */
  overlapChars?: number;
}

export interface Chunk {
  ordinal: number;
  text: string;
}

const clean = (s: string) => s.replace(/[ \t\f\v\r\n\u00a0]+/g, ' ').trim();

/** Sentences of a paragraph (after `.`, `!`, `?`, `…` followed by a space). */
export function splitSentences(paragraph: string): string[] {
  return paragraph
    .split(/(?<=[.!?…])\s+(?=[^\s])/u)
    .map(clean)
    .filter((s) => s !== '');
}

/** Pieces of at most `max` characters, cut at spaces (a word longer than that is cut hard). */
function splitWords(text: string, max: number): string[] {
  const out: string[] = [];
  let cur = '';
  for (const word of text.split(' ')) {
    for (let w = word; w.length > 0; ) {
      const piece = w.length > max ? w.slice(0, max) : w;
      w = w.slice(piece.length);
      if (cur === '') cur = piece;
      else if (cur.length + 1 + piece.length <= max) cur += ` ${piece}`;
      else {
        out.push(cur);
        cur = piece;
      }
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** The end of `text`, about `max` characters: whole sentences where they fit, else whole words. */
function tailOf(text: string, max: number): string {
  if (max <= 0) return '';
  if (text.length <= max) return text;
  const sentences = splitSentences(text);
  let tail = '';
  for (let i = sentences.length - 1; i >= 0; i--) {
    const next = tail === '' ? sentences[i]! : `${sentences[i]} ${tail}`;
    if (next.length > max) break;
    tail = next;
  }
  if (tail !== '') return tail;
  const words = text.split(' ');
  for (let i = words.length - 1; i >= 0; i--) {
    const next = tail === '' ? words[i]! : `${words[i]} ${tail}`;
    if (next.length > max) break;
    tail = next;
  }
  return tail;
}

export function chunkText(text: string, opts: ChunkOptions = {}): Chunk[] {
  const maxChars = Math.max(50, opts.maxChars ?? 1200);
  const targetChars = Math.min(maxChars, Math.max(1, opts.targetChars ?? 800));
  const overlapChars = Math.max(0, Math.min(opts.overlapChars ?? 180, Math.floor(maxChars / 3)));
  // the units: paragraphs, or the sentences (or word runs) of a paragraph too long for one chunk
  const units: string[] = [];
  for (const raw of text.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/)) {
    const p = clean(raw);
    if (p === '') continue;
    if (p.length <= maxChars - overlapChars) {
      units.push(p);
      continue;
    }
    for (const s of splitSentences(p)) units.push(...(s.length <= maxChars - overlapChars ? [s] : splitWords(s, maxChars - overlapChars)));
  }
  const chunks: string[] = [];
  let cur = '';
  for (const unit of units) {
    const joined = cur === '' ? unit : `${cur}\n\n${unit}`;
    if (cur === '' || (joined.length <= maxChars && cur.length < targetChars)) {
      cur = joined;
      continue;
    }
    chunks.push(cur);
    const overlap = tailOf(cur.replace(/\n\n/g, ' '), overlapChars);
    cur = overlap !== '' && overlap.length + 2 + unit.length <= maxChars ? `${overlap}\n\n${unit}` : unit;
  }
  if (cur !== '') chunks.push(cur);
  return chunks.map((t, ordinal) => ({ ordinal, text: t }));
}
