// Format check for the knowledge-base evaluation set (eval/knowledge/).
// Run: npx tsx eval/knowledge/check.ts   (exit code 1 when the set is invalid)
// The unit test test/unit/knowledge-eval-set.test.ts runs the same checks.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { extname, join } from 'node:path';

export const QUESTION_COUNT = 40;
export const PASSAGE_MIN_CHARS = 40;
export const PASSAGE_MAX_CHARS = 300;
export const WORDS_PER_PAGE = 500;
export const MIN_PAGES = 20;
export const MAX_PAGES = 40;
export const MIN_DOCUMENTS = 10;
export const MAX_DOCUMENTS = 14;
/** A question sharing this many consecutive words with its passage copies it instead of paraphrasing. */
export const MAX_SHARED_WORD_RUN = 5;

export interface EvalQuestion {
  id: string;
  question: string;
  document: string;
  passage: string;
}

export interface DocumentStats {
  name: string;
  words: number;
  questions: number;
}

export interface CheckResult {
  errors: string[];
  questions: EvalQuestion[];
  documents: DocumentStats[];
  totalWords: number;
  pages: number;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

export function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * The visible text of an HTML page: the head, scripts, styles and comments removed, every tag
 * replaced by a space, entities decoded and whitespace collapsed. Deliberately small; passages are
 * chosen inside one element without inline tags, so any reasonable HTML-to-text parser agrees with
 * it on them (up to whitespace).
 */
export function htmlToVisibleText(html: string): string {
  const withoutInvisible = html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<head\b[\s\S]*?<\/head>/gi, ' ')
    .replace(/<(script|style|template|noscript)\b[\s\S]*?<\/\1>/gi, ' ');
  return collapseWhitespace(decodeEntities(withoutInvisible.replace(/<[^>]*>/g, ' ')));
}

/** The text a passage must be found in: the raw file for Markdown and plain text, the visible text for HTML. */
export function documentText(fileName: string, raw: string): string {
  return extname(fileName).toLowerCase() === '.html' ? htmlToVisibleText(raw) : raw;
}

export function countWords(text: string): number {
  return text.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
}

function occurrences(haystack: string, needle: string): number[] {
  const at: number[] = [];
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + 1)) at.push(i);
  return at;
}

function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The longest run of consecutive words the question copies from the passage. */
export function longestSharedWordRun(question: string, passage: string): number {
  const q = words(question);
  const p = words(passage);
  let best = 0;
  for (let i = 0; i < q.length; i++) {
    for (let j = 0; j < p.length; j++) {
      let n = 0;
      while (i + n < q.length && j + n < p.length && q[i + n] === p[j + n]) n++;
      if (n > best) best = n;
    }
  }
  return best;
}

const MARKUP_IN_PASSAGE = [/\*\*/, /\]\(/, /`/, /\|/, /^#/, /<|>/];

export function checkKnowledgeEvalSet(dir: string = __dirname): CheckResult {
  const errors: string[] = [];
  const docsDir = join(dir, 'docs');
  const texts = new Map<string, string>();
  const rawTexts = new Map<string, string>();

  if (!existsSync(join(dir, 'README.md'))) errors.push('README.md is missing');
  const names = existsSync(docsDir) ? readdirSync(docsDir).filter((n) => !n.startsWith('.')).sort() : [];
  if (names.length === 0) errors.push(`no documents in ${docsDir}`);
  for (const name of names) {
    const ext = extname(name).toLowerCase();
    if (!['.md', '.txt', '.html'].includes(ext)) {
      errors.push(`docs/${name}: unexpected file type (only .md, .txt, .html)`);
      continue;
    }
    const raw = readFileSync(join(docsDir, name), 'utf8');
    rawTexts.set(name, raw);
    texts.set(name, documentText(name, raw));
  }
  const byExt = (ext: string) => [...texts.keys()].filter((n) => extname(n).toLowerCase() === ext).length;
  if (texts.size < MIN_DOCUMENTS || texts.size > MAX_DOCUMENTS) errors.push(`expected ${MIN_DOCUMENTS}–${MAX_DOCUMENTS} documents, found ${texts.size}`);
  if (byExt('.html') < 2) errors.push(`expected at least 2 .html documents, found ${byExt('.html')}`);
  if (byExt('.txt') < 2 || byExt('.txt') > 3) errors.push(`expected 2–3 .txt documents, found ${byExt('.txt')}`);
  if (byExt('.md') * 2 <= texts.size) errors.push(`expected mostly .md documents, found ${byExt('.md')} of ${texts.size}`);

  const questions: EvalQuestion[] = [];
  const questionsPath = join(dir, 'questions.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(questionsPath, 'utf8'));
  } catch (err) {
    errors.push(`questions.json: cannot read or parse (${(err as Error).message})`);
  }
  if (parsed !== undefined && !Array.isArray(parsed)) errors.push('questions.json: must be an array');
  if (Array.isArray(parsed)) {
    parsed.forEach((item: unknown, i) => {
      const at = `questions.json[${i}]`;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        errors.push(`${at}: must be an object`);
        return;
      }
      const keys = Object.keys(item).sort().join(',');
      if (keys !== 'document,id,passage,question') errors.push(`${at}: keys must be exactly id, question, document, passage (found ${keys})`);
      const q = item as Record<string, unknown>;
      for (const k of ['id', 'question', 'document', 'passage']) {
        if (typeof q[k] !== 'string' || (q[k] as string).trim() === '') errors.push(`${at}: ${k} must be a non-empty string`);
      }
      questions.push({ id: String(q.id), question: String(q.question), document: String(q.document), passage: String(q.passage) });
    });
  }
  if (questions.length !== QUESTION_COUNT) errors.push(`expected exactly ${QUESTION_COUNT} questions, found ${questions.length}`);

  const ids = new Set<string>();
  const passages = new Set<string>();
  const spans = new Map<string, { id: string; start: number; end: number }[]>();
  for (const q of questions) {
    const at = `question ${q.id}`;
    if (!/^q\d{2}$/.test(q.id)) errors.push(`${at}: id must look like q01`);
    if (ids.has(q.id)) errors.push(`${at}: duplicate id`);
    ids.add(q.id);
    if (passages.has(q.passage)) errors.push(`${at}: another question has the same passage`);
    passages.add(q.passage);

    const len = [...q.passage].length;
    if (len < PASSAGE_MIN_CHARS || len > PASSAGE_MAX_CHARS) errors.push(`${at}: passage is ${len} characters (allowed ${PASSAGE_MIN_CHARS}–${PASSAGE_MAX_CHARS})`);
    if (q.passage !== collapseWhitespace(q.passage)) errors.push(`${at}: passage must be one line without leading, trailing or repeated whitespace`);
    for (const re of MARKUP_IN_PASSAGE) if (re.test(q.passage)) errors.push(`${at}: passage contains markup (${re.source}); choose plain prose`);
    const shared = longestSharedWordRun(q.question, q.passage);
    if (shared > MAX_SHARED_WORD_RUN) errors.push(`${at}: question copies ${shared} consecutive words of its passage; paraphrase it`);

    const text = texts.get(q.document);
    if (text === undefined) {
      errors.push(`${at}: document ${q.document} does not exist in docs/`);
      continue;
    }
    const found = occurrences(text, q.passage);
    if (found.length === 0) errors.push(`${at}: passage is not a verbatim substring of ${q.document}${extname(q.document) === '.html' ? ' (visible text)' : ''}`);
    if (found.length > 1) errors.push(`${at}: passage occurs ${found.length} times in ${q.document}; make it unambiguous`);
    if (extname(q.document).toLowerCase() === '.html' && found.length > 0 && !collapseWhitespace(rawTexts.get(q.document) ?? '').includes(q.passage)) {
      errors.push(`${at}: passage spans tags or entities in the HTML source; choose one inside a single element`);
    }
    const start = found[0];
    if (start !== undefined) {
      const list = spans.get(q.document) ?? [];
      for (const other of list) {
        if (start < other.end && other.start < start + q.passage.length) errors.push(`${at}: passage overlaps the passage of ${other.id}`);
      }
      list.push({ id: q.id, start, end: start + q.passage.length });
      spans.set(q.document, list);
    }
  }

  const documents: DocumentStats[] = [...texts.entries()].map(([name, text]) => ({
    name,
    words: countWords(text),
    questions: questions.filter((q) => q.document === name).length,
  }));
  for (const d of documents) if (d.questions === 0) errors.push(`docs/${d.name}: no question is answered by this document`);
  const totalWords = documents.reduce((sum, d) => sum + d.words, 0);
  const pages = totalWords / WORDS_PER_PAGE;
  if (pages < MIN_PAGES || pages > MAX_PAGES) errors.push(`documents total ${totalWords} words = ${pages.toFixed(1)} pages (allowed ${MIN_PAGES}–${MAX_PAGES})`);

  return { errors, questions, documents, totalWords, pages };
}

function main(): void {
  const result = checkKnowledgeEvalSet();
  for (const d of result.documents) console.log(`${String(d.words).padStart(6)} words  ${String(d.questions).padStart(2)} questions  ${d.name}`);
  console.log(`total: ${result.documents.length} documents, ${result.totalWords} words, about ${result.pages.toFixed(1)} pages at ${WORDS_PER_PAGE} words/page; ${result.questions.length} questions`);
  if (result.errors.length > 0) {
    console.error(`\n${result.errors.length} problem(s):`);
    for (const e of result.errors) console.error(`- ${e}`);
    process.exitCode = 1;
  } else {
    console.log('eval set OK');
  }
}

if (require.main === module) main();
