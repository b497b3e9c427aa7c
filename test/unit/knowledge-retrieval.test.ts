import { standInEmbedding } from '../../fakes/embeddings';
import { createEmbedder, l2normalize } from '../../services/embeddings';
import { reciprocalRankFusion, RRF_K } from '../../services/rank-fusion';
import { htmlToText, knowledgeMimeType, markdownToText, parseDocument } from '../../activities/knowledge/parse';
import { tinyPdf } from '../support/pdf';

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

  test('a hand-written PDF is read; a broken one and an empty text are rejected', async () => {
    expect(await parseDocument(tinyPdf(['Hello PDF world.']), 'application/pdf')).toContain('Hello PDF world.');
    await expect(parseDocument(Buffer.from('%PDF-1.4 nothing'), 'application/pdf')).rejects.toThrow(/PDF could not be read/);
    await expect(parseDocument(Buffer.from('  \n '), 'text/plain')).rejects.toThrow(/no text/);
    await expect(parseDocument(Buffer.from([0x61, 0x00, 0x62]), 'text/plain')).rejects.toThrow(/binary/);
  });
});
