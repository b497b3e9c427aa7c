import { chunkText, splitSentences } from '../../activities/knowledge/chunk';

const sentence = (i: number) => `Sentence ${i} explains one fact about the product in plain words.`;
const paragraph = (from: number, n: number) => Array.from({ length: n }, (_, i) => sentence(from + i)).join(' ');

describe('chunkText', () => {
  test('a short text is one chunk, whitespace collapsed inside paragraphs', () => {
    expect(chunkText('  Hello\n  world.  \n\n\n Second   paragraph. ')).toEqual([{ ordinal: 0, text: 'Hello world.\n\nSecond paragraph.' }]);
    expect(chunkText('')).toEqual([]);
    expect(chunkText('\n \n\t')).toEqual([]);
  });

  test('chunks stay within the bounds, are numbered in order, and overlap by about 15 %', () => {
    const text = Array.from({ length: 12 }, (_, p) => paragraph(p * 6, 6)).join('\n\n');
    const chunks = chunkText(text);
    expect(chunks.length).toBeGreaterThan(3);
    chunks.forEach((c, i) => {
      expect(c.ordinal).toBe(i);
      expect(c.text.length).toBeLessThanOrEqual(1200);
      if (i < chunks.length - 1) expect(c.text.length).toBeGreaterThanOrEqual(800);
    });
    for (let i = 1; i < chunks.length; i++) {
      // the next chunk starts with whole sentences from the end of the previous one, at most 180 characters
      const head = chunks[i]!.text.split('\n\n')[0]!;
      expect(head.length).toBeLessThanOrEqual(180);
      expect(head.length).toBeGreaterThan(0);
      expect(chunks[i - 1]!.text.replace(/\n\n/g, ' ').endsWith(head)).toBe(true);
    }
    // every sentence is in some chunk
    for (let i = 0; i < 72; i++) expect(chunks.some((c) => c.text.includes(sentence(i)))).toBe(true);
  });

  test('a paragraph longer than a chunk is cut at sentences, a sentence longer than that at words', () => {
    const chunks = chunkText(paragraph(0, 60));
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) {
      expect(c.text.length).toBeLessThanOrEqual(1200);
      expect(c.text).toMatch(/^Sentence \d+/);
      expect(c.text).toMatch(/words\.$/);
    }
    const long = `${'word '.repeat(600)}end`;
    const pieces = chunkText(long);
    for (const c of pieces) expect(c.text.length).toBeLessThanOrEqual(1200);
    expect(pieces.map((c) => c.text).join(' ')).toContain('end');
    const giant = 'x'.repeat(3000);
    expect(chunkText(giant).every((c) => c.text.length <= 1200)).toBe(true);
  });

  test('a passage shorter than the overlap that straddles a boundary is whole in one chunk', () => {
    const text = Array.from({ length: 30 }, (_, i) => `Fact ${i}: item ${i} costs ${i * 3} euros.`).join(' ');
    const chunks = chunkText(text, { maxChars: 300, targetChars: 200, overlapChars: 60 });
    for (let i = 0; i < 30; i++) expect(chunks.some((c) => c.text.includes(`Fact ${i}: item ${i} costs ${i * 3} euros.`))).toBe(true);
  });

  test('options bound one another; deterministic', () => {
    const text = paragraph(0, 40);
    expect(chunkText(text, { maxChars: 400, targetChars: 5000, overlapChars: 1000 }).every((c) => c.text.length <= 400)).toBe(true);
    expect(chunkText(text)).toEqual(chunkText(text));
  });
});

describe('splitSentences', () => {
  test('splits after . ! ? and keeps abbreviations-free text whole', () => {
    expect(splitSentences('One. Two!  Three? Four')).toEqual(['One.', 'Two!', 'Three?', 'Four']);
    expect(splitSentences('Price: 3.50 euros.')).toEqual(['Price: 3.50 euros.']);
  });
});

describe('chunkText with headings', () => {
  test('with headings: each chunk starts with the path of the headings in force; a level-2 heading starts a chunk, a heading never ends one', () => {
    const text = ['Policy', paragraph(100, 2), '1. Returns', paragraph(0, 6), paragraph(6, 6), 'Opened boxes', paragraph(12, 6), paragraph(18, 6), paragraph(24, 6), paragraph(30, 6), '2. Refunds', paragraph(40, 6), paragraph(46, 6)].join('\n\n');
    const headings = [
      { level: 1, text: 'Policy' },
      { level: 2, text: '1. Returns' },
      { level: 3, text: 'Opened boxes' },
      { level: 2, text: '2. Refunds' },
    ];
    const chunks = chunkText(text, { headings });
    for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(1200);
    // the first chunk opens with the title itself (nothing above it); 1. Returns follows in it (the chunk was still short)
    expect(chunks[0]!.text.startsWith(`Policy\n\n${sentence(100)}`)).toBe(true);
    expect(chunks[0]!.text).toContain('\n\n1. Returns\n\n');
    // a chunk that starts inside 1. Returns (its overlap) carries the path above it
    const opened = chunks.find((c) => c.text.includes('\n\nOpened boxes\n\n'))!;
    expect(opened.text.startsWith('Policy › 1. Returns\n\n')).toBe(true);
    // a chunk that starts inside the subsection carries all three
    expect(chunks.some((c) => c.text.startsWith('Policy › 1. Returns › Opened boxes\n\n') && c.text.includes(sentence(35)))).toBe(true);
    // 2. Refunds opens a chunk of its own, without the previous section's overlap: its context is the title
    const refunds = chunks.find((c) => c.text.includes('2. Refunds'))!;
    expect(refunds.text.startsWith(`Policy\n\n2. Refunds\n\n${sentence(40)}`)).toBe(true);
    // no chunk ends with a heading
    for (const c of chunks) expect(headings.some((h) => c.text.endsWith(h.text))).toBe(false);
    // every sentence is in some chunk
    for (const i of [100, 101, ...Array.from({ length: 36 }, (_, i) => i), ...Array.from({ length: 12 }, (_, i) => 40 + i)]) expect(chunks.some((c) => c.text.includes(sentence(i)))).toBe(true);
    // without headings the same text is chunked as before: no path
    expect(chunkText(text).every((c) => !c.text.includes(' › '))).toBe(true);
  });

  test('a heading paragraph too long to go with the next unit stays where it is: no chunk over maxChars', () => {
    const heading = `TITLE\n${paragraph(0, 11)}`;
    const text = [paragraph(100, 2), heading, paragraph(20, 12), paragraph(40, 5)].join('\n\n');
    const chunks = chunkText(text, { headings: [{ level: 2, text: 'TITLE' }] });
    for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(1200);
    for (const i of [100, 101, 0, 10, 20, 31, 40, 44]) expect(chunks.some((c) => c.text.includes(sentence(i)))).toBe(true);
  });

  test('a heading the text lacks is skipped; the later ones are still found', () => {
    const text = `Guide\n\n${paragraph(0, 14)}\n\nPart two\n\n${paragraph(20, 14)}\n\n${paragraph(40, 14)}`;
    const chunks = chunkText(text, { headings: [{ level: 1, text: 'Guide' }, { level: 2, text: 'Not in the text' }, { level: 2, text: 'Part two' }] });
    expect(chunks.some((c) => c.text.startsWith('Guide › Part two\n\n'))).toBe(true);
    expect(chunks.some((c) => c.text.includes('Not in the text'))).toBe(false);
  });
});
