import { fitTextLength, WHATSAPP_MAX_TEXT_CHARS } from '../../activities/channels/text-limit';

describe('WhatsApp text limit (4,096 characters)', () => {
  test('a text that fits is unchanged', () => {
    const t = 'x'.repeat(WHATSAPP_MAX_TEXT_CHARS);
    expect(fitTextLength(t)).toBe(t);
  });

  test('a long text is cut at the last sentence end', () => {
    const sentence = 'This is one sentence of a long answer. ';
    const t = sentence.repeat(200);
    const out = fitTextLength(t);
    expect(out.length).toBeLessThanOrEqual(WHATSAPP_MAX_TEXT_CHARS);
    expect(out.length).toBeGreaterThan(WHATSAPP_MAX_TEXT_CHARS - sentence.length);
    expect(out.endsWith('answer.')).toBe(true);
    expect(t.startsWith(out)).toBe(true);
  });

  test('without sentence ends it is cut at a word with an ellipsis; without spaces hard, never leaving half a surrogate pair', () => {
    const words = 'word '.repeat(2000);
    const w = fitTextLength(words);
    expect(w.length).toBeLessThanOrEqual(WHATSAPP_MAX_TEXT_CHARS);
    expect(w.endsWith('word…')).toBe(true);
    const emoji = '😀'.repeat(3000);
    const e = fitTextLength(emoji);
    expect(e.length).toBeLessThanOrEqual(WHATSAPP_MAX_TEXT_CHARS);
    expect(e.endsWith('😀…')).toBe(true);
    expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(e)).toBe(false);
  });

  test('a custom limit', () => {
    expect(fitTextLength('Hello there. How are you today?', 20)).toBe('Hello there.');
  });
});
