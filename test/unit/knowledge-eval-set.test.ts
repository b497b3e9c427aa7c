import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkKnowledgeEvalSet,
  htmlToVisibleText,
  longestSharedWordRun,
  QUESTION_COUNT,
  type EvalQuestion,
} from '../../eval/knowledge/check';

const SET_DIR = join(__dirname, '../../eval/knowledge');

describe('knowledge-base evaluation set (eval/knowledge)', () => {
  const result = checkKnowledgeEvalSet(SET_DIR);

  test('passes every format check', () => {
    expect(result.errors).toEqual([]);
  });

  test('has 40 questions over 10–14 documents of 20–40 pages, each document answering at least two', () => {
    expect(result.questions).toHaveLength(QUESTION_COUNT);
    expect(result.documents.length).toBeGreaterThanOrEqual(10);
    expect(result.documents.length).toBeLessThanOrEqual(14);
    expect(result.pages).toBeGreaterThanOrEqual(20);
    expect(result.pages).toBeLessThanOrEqual(40);
    for (const d of result.documents) expect({ name: d.name, enough: d.questions >= 2 }).toEqual({ name: d.name, enough: true });
  });
});

describe('the checker finds problems', () => {
  let dir: string;
  const questions = (): EvalQuestion[] => JSON.parse(readFileSync(join(dir, 'questions.json'), 'utf8')) as EvalQuestion[];
  const write = (qs: unknown) => writeFileSync(join(dir, 'questions.json'), JSON.stringify(qs));
  const at = (qs: EvalQuestion[], i: number): EvalQuestion => {
    const q = qs[i];
    if (!q) throw new Error(`no question ${i}`);
    return q;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kbeval-'));
    cpSync(SET_DIR, dir, { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a copy of the set is valid', () => {
    expect(checkKnowledgeEvalSet(dir).errors).toEqual([]);
  });

  test('a passage that is not verbatim, a missing document, a duplicate id and a short passage', () => {
    const qs = questions();
    at(qs, 0).passage = at(qs, 0).passage.replace('10 metres', 'ten metres');
    at(qs, 1).document = 'no-such-file.md';
    at(qs, 2).id = 'q01';
    at(qs, 3).passage = 'Mixing the two lines is not allowed.';
    write(qs);
    const errors = checkKnowledgeEvalSet(dir).errors.join('\n');
    expect(errors).toContain('question q01: passage is not a verbatim substring of price-list-2026.md');
    expect(errors).toContain('question q02: document no-such-file.md does not exist');
    expect(errors).toContain('question q01: duplicate id');
    expect(errors).toContain('question q04: passage is 36 characters');
  });

  test('an HTML passage must sit inside one element: text across two table cells is refused', () => {
    const qs = questions();
    const html = at(qs, 13);
    expect(html.document).toBe('financing.html');
    html.passage = '24 months 12.75% R69 36 months 13.75% R69 48 months 14.25% R69';
    write(qs);
    const errors = checkKnowledgeEvalSet(dir).errors;
    expect(errors).toContain('question q14: passage spans tags or entities in the HTML source; choose one inside a single element');
    expect(errors.join('\n')).not.toContain('q14: passage is not a verbatim substring');
  });

  test('a copied question, a shared passage, a wrong count and an unreferenced document', () => {
    const qs = questions();
    at(qs, 4).question = `Is it true that ${at(qs, 4).passage}`;
    at(qs, 6).passage = at(qs, 7).passage;
    at(qs, 6).document = at(qs, 7).document;
    write(qs.filter((q) => q.document !== 'energy-sizing-guide.txt'));
    const errors = checkKnowledgeEvalSet(dir).errors.join('\n');
    expect(errors).toMatch(/question q05: question copies \d+ consecutive words/);
    expect(errors).toContain('question q08: another question has the same passage');
    expect(errors).toContain('expected exactly 40 questions, found 38');
    expect(errors).toContain('docs/energy-sizing-guide.txt: no question is answered by this document');
  });

  test('extra keys and malformed JSON', () => {
    const qs = questions() as unknown as Record<string, unknown>[];
    (qs[0] as Record<string, unknown>).answer = 'x';
    write(qs);
    expect(checkKnowledgeEvalSet(dir).errors.join('\n')).toContain('questions.json[0]: keys must be exactly id, question, document, passage');
    writeFileSync(join(dir, 'questions.json'), '[{');
    expect(checkKnowledgeEvalSet(dir).errors.join('\n')).toContain('questions.json: cannot read or parse');
  });
});

describe('helpers', () => {
  test('htmlToVisibleText drops head, scripts, styles and comments, decodes entities and collapses whitespace', () => {
    const html = `<html><head><title>T</title><style>p{}</style></head><body>
      <nav><a href="/">Home</a></nav><!-- hidden -->
      <p>Fish &amp; chips
         cost R45&nbsp;each.</p><script>var x = "<p>no</p>";</script><footer>&#169; 2026</footer></body></html>`;
    expect(htmlToVisibleText(html)).toBe('Home Fish & chips cost R45 each. © 2026');
  });

  test('longestSharedWordRun ignores case and punctuation', () => {
    expect(longestSharedWordRun('How much is DELIVERY to Knysna?', 'Fee: delivery to Knysna is R1,650.')).toBe(3);
    expect(longestSharedWordRun('hello', 'world')).toBe(0);
  });
});
