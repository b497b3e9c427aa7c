/**
 * Meta's size limit of a WhatsApp text: `text.body` is at most 4,096 characters (Cloud API
 * reference, "text object"). A longer AI reply would be refused (a permanent error, the lead
 * gets nothing), so the send activity shortens it instead of splitting it: one outbound
 * message keeps one deterministic id, one status and one credit (splitting would need an id
 * per part chosen by the workflow, a credit and a pacing gap each).
 */

/** Meta: "Maximum 4096 characters" for `text.body`. */
export const WHATSAPP_MAX_TEXT_CHARS = 4096;

const ELLIPSIS = '…';

/**
 * `text` unchanged when it fits, else cut to at most `max` UTF-16 code units (never more than
 * Meta's character count, and never a lone surrogate): at the last sentence end in the second
 * half of the allowance, else at the last word break (with an ellipsis), else hard (with an ellipsis).
 */
export function fitTextLength(text: string, max: number = WHATSAPP_MAX_TEXT_CHARS): string {
  if (text.length <= max) return text;
  const room = max - ELLIPSIS.length;
  let cut = text.slice(0, room);
  // do not end on the high half of a surrogate pair
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  const half = Math.floor(room / 2);
  // a sentence end: . ! ? (optionally closed by a quote or bracket) followed by white space in the original
  const sentenceEnds = [...text.slice(0, room + 1).matchAll(/[.!?。！？]["'”’)\]]*(?=\s)/g)];
  const lastSentence = sentenceEnds.length ? sentenceEnds[sentenceEnds.length - 1]! : undefined;
  if (lastSentence && lastSentence.index + lastSentence[0].length >= half && lastSentence.index + lastSentence[0].length <= max) {
    return text.slice(0, lastSentence.index + lastSentence[0].length);
  }
  const atWord = cut.replace(/\s+\S*$/, '');
  return `${(atWord.length >= half ? atWord : cut).trimEnd()}${ELLIPSIS}`;
}
