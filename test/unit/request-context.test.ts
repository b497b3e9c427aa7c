/** The access log's path shape (api/middleware/request-context.ts): words kept, ids and tokens never shown. */
import { pathShape } from '../../api/middleware/request-context';

describe('pathShape', () => {
  it('keeps short lowercase words', () => {
    expect(pathShape('/v1/leads')).toBe('/v1/leads');
    expect(pathShape('/webhooks/whatsapp')).toBe('/webhooks/whatsapp');
    expect(pathShape('/')).toBe('/');
  });
  it('hides ids, tokens, numbers and long or mixed-case segments', () => {
    expect(pathShape('/v1/leads/3f1c2a9e-8b7d-4c1e-9f00-1234567890ab/messages')).toBe('/v1/leads/:/messages');
    expect(pathShape('/media/eyJhbGciOiJIUzI1NiJ9.payload.sig')).toBe('/media/:');
    expect(pathShape('/webchat/wk_Ab12Cd34/visitors')).toBe('/webchat/:/visitors');
    expect(pathShape('/v1/contacts/919876543210')).toBe('/v1/contacts/:');
    expect(pathShape('/x/abcdefghijklmnopqrstuvwxyz')).toBe('/x/:');
    expect(pathShape('/v1/leads/abc123def456')).toBe('/v1/leads/:');
  });
  it('shows at most 8 segments', () => {
    expect(pathShape('/a/b/c/d/e/f/g/h/i/j')).toBe('/a/b/c/d/e/f/g/h/…');
  });
});
