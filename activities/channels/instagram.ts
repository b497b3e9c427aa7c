import { createGraphSender, type SendResult } from './graph-send';
import { textDetails, type SendTextInput, type WhatsAppDeps } from './whatsapp';

export interface SendInstagramTextInput extends SendTextInput {
  /** A human agent's reply sent with the HUMAN_AGENT tag (allowed up to 7 days after the user's last message). */
  humanAgent?: boolean;
}

/**
 * Instagram Messaging send API: `POST /{ig-account-id}/messages` with
 * `{ recipient: { id: IGSID }, message: { text }, messaging_type }`, answered with
 * `{ recipient_id, message_id }`. Effectively once per outboundMessageId (graph-send).
 * Which window applies (24 h, or 7 days for a human agent's reply) is the workflow's decision;
 * Meta refuses a send outside it with code 10 / subcode 2534022 (class `reengagement`).
 */
/** Instagram refuses a text over 1000 bytes (a permanent error): longer replies are cut at a word. */
export const INSTAGRAM_MAX_TEXT_BYTES = 1000;

export function fitInstagramText(text: string): string {
  if (Buffer.byteLength(text, 'utf8') <= INSTAGRAM_MAX_TEXT_BYTES) return text;
  let cut = '';
  for (const ch of text) {
    if (Buffer.byteLength(cut + ch, 'utf8') > INSTAGRAM_MAX_TEXT_BYTES - 3) break;
    cut += ch;
  }
  const atWord = cut.replace(/\s+\S*$/, '');
  return `${atWord.length > cut.length / 2 ? atWord : cut}…`;
}

export function createInstagramActivities(deps: WhatsAppDeps) {
  const sendGraphMessage = createGraphSender({ ...deps, platform: 'instagram' });
  return {
    async sendInstagramText(input: SendInstagramTextInput): Promise<SendResult> {
      const messaging = input.humanAgent ? { messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' } : { messaging_type: 'RESPONSE' };
      const text = fitInstagramText(input.text);
      return sendGraphMessage({
        input,
        path: (igAccountId) => `${encodeURIComponent(igAccountId)}/messages`,
        body: { recipient: { id: input.to }, message: { text }, ...messaging },
        transcript: { body: text, type: 'text', ...textDetails(input) },
      });
    },
  };
}
