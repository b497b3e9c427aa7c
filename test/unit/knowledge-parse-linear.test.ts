/**
 * Markdown, plain text and HTML headings are read in the worker itself (not in the parsing child):
 * on hostile input each must stay linear. Each input below took the old regexes many seconds
 * (quadratic or worse: 80 KB of `**a ` 6.9 s, a heading line of 2,000 spaces 4 s) while the
 * worker's event loop was blocked; a 10 MB upload would have held it for hours.
 */
import { chunkText } from '../../activities/knowledge/chunk';
import { htmlHeadings, markdownHeadings, markdownToText } from '../../activities/knowledge/parse';

const timed = (f: () => unknown): number => {
  const t = Date.now();
  f();
  return Date.now() - t;
};

describe('knowledge parsing in the worker is linear on hostile input', () => {
  test.each([
    ['unclosed bold', '**a '.repeat(30_000)],
    ['unclosed bold (underscores)', '__a '.repeat(30_000)],
    ['unclosed images', '!['.repeat(40_000)],
    ['unclosed links', '[a'.repeat(40_000)],
    ['links without a closing parenthesis', '[a]('.repeat(30_000)],
    ['fences on one line', '```'.repeat(30_000)],
  ])('markdownToText: %s', (_name, md) => {
    expect(timed(() => markdownToText(md))).toBeLessThan(1_000);
  });

  test('markdownHeadings: a heading line of spaces, hashes and tabs', () => {
    expect(timed(() => markdownHeadings(`# a${' '.repeat(3_000)}x`))).toBeLessThan(1_000);
    expect(timed(() => markdownHeadings(`# a${' #\t'.repeat(3_000)}x\n`.repeat(3)))).toBeLessThan(1_000);
  });

  test('markdown still reads as before', () => {
    expect(markdownToText('![logo](a.png) see [the (full) list](https://x.test/a_(b)) **bold\ntext** and __u__\n```js\ncode\n```\n')).toBe('logo see the (full) list bold\ntext and u\ncode\n');
    expect(markdownHeadings('# C# notes #  \n## Prices ##\n###   \n#### x\t#')).toEqual([
      { level: 1, text: 'C# notes' },
      { level: 2, text: 'Prices' },
      { level: 4, text: 'x' },
    ]);
  });

  test('htmlHeadings: many unclosed heading tags, and 2,000 headings, in well under a second', () => {
    expect(timed(() => htmlHeadings('<h1'.repeat(300_000)))).toBeLessThan(1_000);
    let found: unknown[] = [];
    expect(timed(() => (found = htmlHeadings('<h2>Hi</h2>'.repeat(2_000))))).toBeLessThan(1_000);
    expect(found).toHaveLength(2_000);
    // the markup converted for headings is bounded in total, not only per tag
    expect(timed(() => htmlHeadings(`<h2>${'<table><tr><td>x</td></tr></table>'.repeat(50)}</h2>`.repeat(2_000)))).toBeLessThan(1_500);
  });
});

describe('chunking in the worker is linear in the number of paragraphs', () => {
  test('900 KB of one-letter paragraphs is chunked in well under a second (it took ~6 s: each paragraph re-joined the whole chunk so far)', () => {
    let chunks: { text: string }[] = [];
    expect(timed(() => (chunks = chunkText('A\n\n'.repeat(300_000))))).toBeLessThan(1_500);
    expect(chunks.length).toBeGreaterThan(100);
    expect(chunks.every((c) => c.text.length <= 1_200)).toBe(true);
  });
});
