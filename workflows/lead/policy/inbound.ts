/**
 * Which inbound messages the lead wrote. Meta's own notices in a conversation (WhatsApp
 * `system` messages: the user changed their number or their business-scoped user id) are
 * recorded and re-link the lead, but nobody wrote them: they neither open the 24-hour window
 * nor ask for an answer.
 */
import type { InboundMessage } from '../../../contract/messages';

export function writtenByLead(m: Pick<InboundMessage, 'type'>): boolean {
  return m.type !== 'system';
}
