/** The retrieval evaluation (`npm run eval:knowledge`) on a tiny corpus of its own (test/fixtures/knowledge), in-memory PGlite, offline. */
import path from 'node:path';
import { passageCoverage, runKnowledgeEval, HIT_COVERAGE } from '../../eval/knowledge/run';

jest.setTimeout(120_000);

describe('passageCoverage (the hit rule)', () => {
  test('a passage inside the text covers 1, markup and case ignored', () => {
    expect(passageCoverage('The full service costs 149 euros.', 'Intro. The **full service** costs 149 EUROS. More.')).toBe(1);
  });
  test('a passage straddling a chunk boundary: the longest run of its words the chunk holds', () => {
    const passage = 'one two three four five six seven eight nine ten';
    expect(passageCoverage(passage, 'blah one two three four five six seven')).toBeCloseTo(0.7);
    expect(passageCoverage(passage, 'blah one two three four five six seven')).toBeGreaterThanOrEqual(HIT_COVERAGE);
    expect(passageCoverage(passage, 'eight nine ten and more')).toBeLessThan(HIT_COVERAGE);
    // scattered words are no run
    expect(passageCoverage(passage, 'one x two x three x four x five x six')).toBeCloseTo(0.1);
    expect(passageCoverage('', 'anything')).toBe(0);
  });
});

test('the evaluation ingests the corpus, drops invalid questions and scores every method', async () => {
  const report = await runKnowledgeEval({ dir: path.join(__dirname, '..', 'fixtures', 'knowledge'), quiet: true, dimensions: 256 });
  expect(report.documents).toBe(3);
  expect(report.questions).toBe(9);
  expect(report.invalidQuestions).toEqual([{ id: 'x1', reason: "the passage is not in service.html's text" }]);
  for (const m of Object.values(report.methods)) {
    expect(m.recallAtK).toBeGreaterThanOrEqual(0.75);
    expect(m.mrr).toBeGreaterThan(0.5);
  }
  // the two vector paths (pgvector and real[] in SQL) rank alike
  expect(report.perQuestion.map((q) => q.ranks.vector)).toEqual(report.perQuestion.map((q) => q.ranks.vectorArray));
  expect(report.methods.hybrid.recallAtK).toBe(1);
});
