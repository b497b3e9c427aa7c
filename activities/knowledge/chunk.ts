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
 * - With the document's `headings` (parse.ts: Markdown `#`, HTML h1–h3, capitalised lines of plain
 *   text): a chunk starts with the path of the headings in force where it starts
 *   (`Warranty and Returns Policy › 8. Returns of products bought without installation`), so a
 *   passage deep in a section is still found by the section's words (full text and embeddings);
 *   a level-1 or level-2 heading starts a new chunk (without overlap) once the current one holds
 *   half of `targetChars`, and a heading never ends a chunk. The path takes at most maxChars / 8
 *   (150) characters of the chunk's budget. Measured: eval/knowledge/README.md.
 */

export interface ChunkOptions {
  /** Hard upper bound of a chunk's length, overlap included (default 1200). */
  maxChars?: number;
  /** A chunk is not closed below this length unless the text ends (default 800). */
  targetChars?: number;
  /** Characters of the previous chunk repeated at the start of the next (default 180, 15 % of 1200). */
  overlapChars?: number;
  /** The document's section headings in order (parse.ts): each chunk starts with the path of those in force. */
  headings?: ChunkHeading[];
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

/** A section heading the chunker recognises: a paragraph whose first line is `text` (chunk.ts takes them in document order). */
export interface ChunkHeading {
  level: number;
  text: string;
}

interface Unit {
  text: string;
  /** The level when this unit is a heading (a paragraph that opens with one). */
  heading?: number;
  /** The headings in force where the unit starts (outermost first), the unit's own not included. */
  path: string[];
}

const PATH_SEPARATOR = ' › ';
/** Headings of this level or higher (1, 2: a Markdown `#`/`##`, an HTML h1/h2) close a chunk of at least targetChars / 2: a chunk holds one section where it can. */
const SECTION_LEVEL = 2;
const fold = (s: string) => clean(s).toLowerCase();

export function chunkText(text: string, opts: ChunkOptions = {}): Chunk[] {
  const maxChars = Math.max(50, opts.maxChars ?? 1200);
  const targetChars = Math.min(maxChars, Math.max(1, opts.targetChars ?? 800));
  const overlapChars = Math.max(0, Math.min(opts.overlapChars ?? 180, Math.floor(maxChars / 3)));
  const headings = opts.headings ?? [];
  // room for the heading path each chunk starts with (only when the document has headings)
  const pathBudget = headings.length > 0 ? Math.min(150, Math.floor(maxChars / 8)) : 0;
  const bodyMax = maxChars - pathBudget;
  // the units: paragraphs, or the sentences (or word runs) of a paragraph too long for one chunk
  const units: Unit[] = [];
  const stack: ChunkHeading[] = [];
  let next = 0;
  for (const raw of text.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/)) {
    const p = clean(raw);
    if (p === '') continue;
    // headings are matched in order; one the text lacks (a parser's disagreement) is skipped
    let level: number | undefined;
    let path = stack.map((h) => h.text);
    const firstLine = fold(raw.trim().split('\n')[0] ?? '');
    for (let j = next; j < Math.min(headings.length, next + 8); j++) {
      if (fold(headings[j]!.text) === firstLine) {
        level = headings[j]!.level;
        next = j + 1;
        while (stack.length > 0 && stack[stack.length - 1]!.level >= level) stack.pop();
        path = stack.map((h) => h.text); // a heading's context: the headings above it
        stack.push({ level, text: clean(headings[j]!.text) });
        break;
      }
    }
    if (p.length <= bodyMax - overlapChars) {
      units.push({ text: p, heading: level, path });
      continue;
    }
    const pieces = splitSentences(p).flatMap((x) => (x.length <= bodyMax - overlapChars ? [x] : splitWords(x, bodyMax - overlapChars)));
    // the first piece opens the section; the rest are inside it
    pieces.forEach((x, i) => units.push(i === 0 ? { text: x, heading: level, path } : { text: x, path: stack.map((h) => h.text) }));
  }
  const chunks: string[] = [];
  let cur: Unit[] = [];
  let overlap = '';
  const join = (us: Unit[], lead: string) => [lead, ...us.map((u) => u.text)].filter((t) => t !== '').join('\n\n');
  const close = () => {
    const first = cur[0]!;
    let prefix = first.path.join(PATH_SEPARATOR);
    if (prefix.length > pathBudget - 2) prefix = prefix.slice(0, Math.max(0, pathBudget - 3)).trimEnd() + '…';
    const body = join(cur, overlap);
    chunks.push(prefix !== '' && pathBudget > 0 ? `${prefix}\n\n${body}` : body);
  };
  // the characters of `cur`'s texts, kept as units are added: join(cur, overlap).length without
  // joining again for every unit (that was quadratic in the units of a chunk: one-letter paragraphs)
  let curChars = 0;
  const sumChars = (us: Unit[]) => us.reduce((n, u) => n + u.text.length, 0);
  for (const unit of units) {
    if (cur.length === 0) {
      cur = [unit];
      curChars = unit.text.length;
      continue;
    }
    // (unit texts are never empty: join drops only an empty overlap)
    const lead = overlap === '' ? 0 : overlap.length + 2;
    const curLen = lead + curChars + 2 * (cur.length - 1);
    const joinedLen = curLen + 2 + unit.text.length;
    const opensSection = unit.heading !== undefined && unit.heading <= SECTION_LEVEL && curLen >= targetChars / 2;
    if (!opensSection && joinedLen <= bodyMax && curLen < targetChars) {
      cur.push(unit);
      curChars += unit.text.length;
      continue;
    }
    // a heading does not end a chunk: it goes with the section it opens
    const carried: Unit[] = [];
    while (cur.length > 1 && cur[cur.length - 1]!.heading !== undefined) carried.unshift(cur.pop()!);
    // …unless it and the unit would not fit one chunk together (a heading line with a long paragraph under it)
    if (carried.length > 0 && join([...carried, unit], '').length > bodyMax) cur.push(...carried.splice(0));
    close();
    const tail = opensSection ? '' : tailOf(join(cur, overlap).replace(/\n\n/g, ' '), overlapChars);
    cur = [...carried, unit];
    curChars = sumChars(cur);
    overlap = tail !== '' && join(cur, tail).length <= bodyMax ? tail : '';
  }
  if (cur.length > 0) close();
  return chunks.map((t, ordinal) => ({ ordinal, text: t }));
}
