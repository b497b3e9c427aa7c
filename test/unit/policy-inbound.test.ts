import { writtenByLead } from '../../workflows/lead/policy/inbound';

describe('writtenByLead', () => {
  test("Meta's system notices (changed number, changed user id) were not written by the lead", () => {
    expect(writtenByLead({ type: 'system' })).toBe(false);
  });
  test('every kind of message a person sends was', () => {
    for (const type of ['text', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts', 'interactive', 'button', 'reaction', 'order', 'request_welcome', 'unsupported'] as const) {
      expect(writtenByLead({ type })).toBe(true);
    }
  });
});
