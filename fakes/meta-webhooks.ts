import { randomBytes } from 'node:crypto';

export interface TextWebhookOptions {
  phoneNumberId: string;
  from: string;
  text: string;
  /** wamid; a fresh random one by default. */
  id?: string;
  name?: string;
  /** Unix seconds the user sent it; now by default. */
  timestamp?: number;
  displayPhoneNumber?: string;
}

/** A WhatsApp Cloud API text-message webhook body, shaped as Meta sends it. */
export function whatsAppTextWebhook(o: TextWebhookOptions) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '230981457709312',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: o.displayPhoneNumber ?? '15557320418', phone_number_id: o.phoneNumberId },
              contacts: [{ profile: { name: o.name ?? 'Priya Sharma' }, wa_id: o.from }],
              messages: [
                {
                  from: o.from,
                  id: o.id ?? `wamid.${randomBytes(16).toString('hex')}`,
                  timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
                  type: 'text',
                  text: { body: o.text },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}
