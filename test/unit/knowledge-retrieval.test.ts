import { standInEmbedding } from '../../fakes/embeddings';
import { createEmbedder, l2normalize } from '../../services/embeddings';
import { normalizedScoreFusion, reciprocalRankFusion, RRF_K } from '../../services/rank-fusion';
import { htmlHeadings, htmlToText, knowledgeMimeType, markdownHeadings, markdownToText, parseDocument, parseDocumentWithHeadings, plainTextHeadings } from '../../activities/knowledge/parse';
import { tinyPdf } from '../support/pdf';
import { withUnitsApart } from '../../services/knowledge';

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('stand-in embeddings', () => {
  test('deterministic, L2-normalized, of the requested size', () => {
    const a = standInEmbedding('The warranty lasts 36 months', 256);
    expect(a).toHaveLength(256);
    expect(standInEmbedding('The warranty lasts 36 months', 256)).toEqual(a);
    expect(Math.sqrt(dot(a, a))).toBeCloseTo(1, 10);
    expect(standInEmbedding('', 64).every((x) => x === 0)).toBe(true);
  });

  test('texts sharing words are closer than unrelated ones; stop words alone carry nothing', () => {
    const q = standInEmbedding('How long is the warranty?', 512);
    const near = standInEmbedding('Every kettle carries a warranty of 36 months.', 512);
    const far = standInEmbedding('We accept Visa, Mastercard and PayPal.', 512);
    expect(dot(q, near)).toBeGreaterThan(dot(q, far) + 0.1);
    // character trigrams: an inflected form still matches
    expect(dot(standInEmbedding('refunds', 512), standInEmbedding('refund', 512))).toBeGreaterThan(0.5);
    expect(standInEmbedding('the of and is', 32).every((x) => x === 0)).toBe(true);
  });
});

describe('embedder', () => {
  test('batches by batchSize, keeps the order, normalizes', async () => {
    const calls: string[][] = [];
    const e = createEmbedder({ model: 'm', dimensions: 2, batchSize: 2 }, async (texts) => {
      calls.push(texts);
      return texts.map((t) => [t.length, 1]);
    });
    expect(e.key).toBe('m@2');
    const out = await e.embed(['a', 'bbb', 'cc', '']);
    expect(calls).toEqual([['a', 'bbb'], ['cc', ' ']]);
    expect(out[1]).toEqual(l2normalize([3, 1]));
    expect(out.map((v) => Math.hypot(...v))).toEqual(out.map(() => expect.closeTo(1, 10)));
  });
});

describe('reciprocal rank fusion', () => {
  test('sums 1/(k + rank) over the lists; an item both lists hold beats one list\'s first', () => {
    const fused = reciprocalRankFusion([
      ['a', 'b', 'c'],
      ['x', 'c', 'b'],
    ]);
    expect(fused.map((f) => f.id)).toEqual(['b', 'c', 'a', 'x']);
    const b = fused[0]!;
    expect(b.fused).toBeCloseTo(1 / (RRF_K + 2) + 1 / (RRF_K + 3), 12);
    expect(b.ranks).toEqual([2, 3]);
    expect(fused.find((f) => f.id === 'x')!.ranks).toEqual([null, 1]);
  });

  test('ties go to the better single rank, then the id; repeats count once; empty lists', () => {
    expect(reciprocalRankFusion([['a'], ['b']]).map((f) => f.id)).toEqual(['a', 'b']);
    expect(reciprocalRankFusion([['z', 'y'], ['y', 'z']]).map((f) => f.id)).toEqual(['y', 'z']);
    expect(reciprocalRankFusion([['a', 'a', 'b']])[0]).toEqual({ id: 'a', fused: 1 / (RRF_K + 1), ranks: [1] });
    expect(reciprocalRankFusion([[], []])).toEqual([]);
    expect(reciprocalRankFusion([['a']], 0)[0]!.fused).toBe(1);
  });
});

describe('weighted fusion', () => {
  test('RRF weights scale each list\'s share', () => {
    const fused = reciprocalRankFusion([['a', 'b'], ['b', 'a']], RRF_K, [1, 0.5]);
    expect(fused.map((f) => f.id)).toEqual(['a', 'b']);
    expect(fused[0]!.fused).toBeCloseTo(1 / (RRF_K + 1) + 0.5 / (RRF_K + 2), 12);
  });

  test('normalized score fusion: each list\'s best counts 1 × its weight, a missing item 0 from that list', () => {
    const text = [
      { id: 'a', score: 8 },
      { id: 'b', score: 2 },
    ];
    const vector = [
      { id: 'b', score: 0.5 },
      { id: 'c', score: 0.45 },
      { id: 'a', score: 0.1 },
    ];
    // equal weights: b (0.25 + 1) beats a (1 + 0.2)
    expect(normalizedScoreFusion([text, vector]).map((f) => f.id)).toEqual(['b', 'a', 'c']);
    // vectors weighted 0.3: a clear full-text winner keeps its place (a 1.06, b 0.55, c 0.27)
    const fused = normalizedScoreFusion([text, vector], [1, 0.3]);
    expect(fused.map((f) => f.id)).toEqual(['a', 'b', 'c']);
    expect(fused[0]).toEqual({ id: 'a', fused: expect.closeTo(1 + 0.3 * 0.2, 12), ranks: [1, 3] });
    expect(fused[2]!.ranks).toEqual([null, 2]);
    // weight 0: the full-text order, vector-only items after it
    expect(normalizedScoreFusion([text, vector], [1, 0]).map((f) => f.id)).toEqual(['a', 'b', 'c']);
  });

  test('ties, repeats, non-positive scores and empty lists', () => {
    expect(normalizedScoreFusion([[{ id: 'y', score: 1 }], [{ id: 'x', score: 1 }]]).map((f) => f.id)).toEqual(['x', 'y']);
    expect(normalizedScoreFusion([[{ id: 'a', score: 2 }, { id: 'a', score: 1 }]])).toEqual([{ id: 'a', fused: 1, ranks: [1] }]);
    expect(normalizedScoreFusion([[{ id: 'a', score: 0 }, { id: 'b', score: -1 }]]).map((f) => f.fused)).toEqual([0, 0]);
    expect(normalizedScoreFusion([[], []])).toEqual([]);
  });
});

describe('parsing', () => {
  test('types from the declared type, the file name or the bytes', () => {
    expect(knowledgeMimeType('text/markdown; charset=utf-8')).toBe('text/markdown');
    expect(knowledgeMimeType('application/octet-stream', 'a.MD')).toBe('text/markdown');
    expect(knowledgeMimeType(undefined, 'x.htm')).toBe('text/html');
    expect(knowledgeMimeType('application/octet-stream', 'blob', Buffer.from('%PDF-1.4'))).toBe('application/pdf');
    expect(knowledgeMimeType('image/png', 'a.txt')).toBeUndefined();
  });

  test('HTML without tags, scripts and styles; Markdown without markup', () => {
    expect(htmlToText('<style>a{}</style><h1>Title</h1><p>Hello <a href="https://x">there</a>.</p><script>1</script>')).toBe('Title\n\nHello there.');
    expect(markdownToText('## Prices\n\n**Bold** and *soft* [link](http://x) `code`')).toBe('Prices\n\nBold and soft link code');
  });

  test('a Markdown heading stays a paragraph of its own (the blank line before it is kept)', () => {
    expect(markdownToText('Intro text.\n\n## Returns\n\nBody.\n\n> quoted')).toBe('Intro text.\n\nReturns\n\nBody.\n\nquoted');
  });

  test('headings: Markdown #, HTML h1–h3 (not h4–h6), capitalised lines of plain text', async () => {
    expect(markdownHeadings('# Policy\n\ntext\n\n## 1. **Returns** ##\n\n```\n# not a heading\n```\n\n### Opened boxes\n#nospace')).toEqual([
      { level: 1, text: 'Policy' },
      { level: 2, text: '1. Returns' },
      { level: 3, text: 'Opened boxes' },
    ]);
    expect(htmlHeadings('<h1 class="t">Financing &amp; loans</h1><p>x</p><h2>Sun<b>Share</b> rent-to-own</h2><h4>Company</h4>')).toEqual([
      { level: 1, text: 'Financing & loans' },
      { level: 2, text: 'SunShare rent-to-own' },
    ]);
    // untrusted HTML read in the worker: an unclosed tag does not swallow the rest, and at most 2,000 tags are read
    expect(htmlHeadings(`<h1>${'x'.repeat(3000)}</h1><h2>Real</h2>`)).toEqual([{ level: 2, text: 'Real' }]);
    expect(htmlHeadings('<h2>a</h2>'.repeat(3000))).toHaveLength(2000);
    expect(htmlHeadings(`${'<h1>'.repeat(100_000)}<h1>t</h1>`)).toEqual([]);
    expect(plainTextHeadings('ACME - DELIVERY POLICY\nVersion 4\n\nSome text.\n\nZONE A - CAPE TOWN\n\nFee: R650.\n\nNOT A HEADING\nbecause a second line follows')).toEqual([
      { level: 1, text: 'ACME - DELIVERY POLICY' },
      { level: 2, text: 'ZONE A - CAPE TOWN' },
    ]);
    const parsed = await parseDocumentWithHeadings(Buffer.from('# Title\n\nBody.'), 'text/markdown');
    expect(parsed).toEqual({ text: 'Title\n\nBody.', headings: [{ level: 1, text: 'Title' }] });
    expect((await parseDocumentWithHeadings(tinyPdf(['Hello PDF world.']), 'application/pdf')).headings).toEqual([]);
  });

  test('a hand-written PDF is read; a broken one and an empty text are rejected', async () => {
    expect(await parseDocument(tinyPdf(['Hello PDF world.']), 'application/pdf')).toContain('Hello PDF world.');
    await expect(parseDocument(Buffer.from('%PDF-1.4 nothing'), 'application/pdf')).rejects.toThrow(/PDF could not be read/);
    await expect(parseDocument(Buffer.from('  \n '), 'text/plain')).rejects.toThrow(/no text/);
    await expect(parseDocument(Buffer.from([0x61, 0x00, 0x62]), 'text/plain')).rejects.toThrow(/binary/);
  });
});

describe('query text', () => {
  test('a number glued to a unit is searched apart as well', () => {
    expect(withUnitsApart('our router only does 5ghz')).toBe('our router only does 5ghz our router only does 5 ghz');
    expect(withUnitsApart('a 10kWh battery, 2x')).toBe('a 10kWh battery, 2x a 10 kWh battery, 2 x');
    expect(withUnitsApart('VH-5K or 5 kW')).toBe('VH-5K or 5 kW VH-5 K or 5 kW');
    expect(withUnitsApart('no numbers here, 42')).toBe('no numbers here, 42');
  });
});
