/**
 * Lead workflow ids: `lead:<channel account id>:<digest>`, where the digest is the first 128
 * bits of HMAC-SHA256(K, channel account id ‖ 0x00 ‖ contact id), base64url (22 characters).
 * The contact id (a WhatsApp number, an Instagram IGSID, a web chat visitor id) never shows in
 * the Temporal Web UI, its list filters, page titles or Temporal's database; the channel account
 * stays in clear (services/payload-keys.ts `leadChannelOf` reads it to find the tenant's key).
 *
 * Keyed, because a plain hash of a phone number is brute-forced in minutes. K is 32 random bytes
 * created once per database and stored wrapped by the master key (services/lead-id-key.ts), so
 * a master-key rotation renames nothing. Finding a lead by number goes through the API
 * (`GET /v1/leads`), which reads the id from the lead's row.
 *
 * Not workflow code (node:crypto): workflows read their own id from `workflowInfo()`.
 */
import { createHmac } from 'node:crypto';

export const LEAD_ID_KEY_BYTES = 32;

export interface LeadIds {
  /** The workflow id of the lead of this contact on this channel account. */
  workflowId(channelAccountId: string, contactId: string): string;
}

export function createLeadIds(key: Buffer): LeadIds {
  if (key.length !== LEAD_ID_KEY_BYTES) throw new Error(`lead id key: ${LEAD_ID_KEY_BYTES} bytes expected, got ${key.length}`);
  const k = Buffer.from(key);
  return {
    workflowId(channelAccountId: string, contactId: string): string {
      const digest = createHmac('sha256', k).update(channelAccountId, 'utf8').update(Buffer.of(0)).update(contactId, 'utf8').digest();
      return `lead:${channelAccountId}:${digest.subarray(0, 16).toString('base64url')}`;
    },
  };
}
