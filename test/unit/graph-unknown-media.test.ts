import { isUnknownMediaError } from '../../lib/graph-errors';

describe('isUnknownMediaError: when a library file is uploaded again and the send resent', () => {
  test('131053 (media upload error) always', () => {
    expect(isUnknownMediaError({ code: 131053, message: 'Media upload error' })).toBe(true);
  });
  test('code 100 only when it names the media parameter', () => {
    expect(isUnknownMediaError({ code: 100, message: '(#100) Invalid parameter', details: "Param image['id'] is not a valid whatsapp business account media attachment ID" })).toBe(true);
    expect(isUnknownMediaError({ code: 100, message: '(#100) Invalid parameter', details: "Param document['id'] is not valid" })).toBe(true);
    expect(isUnknownMediaError({ code: 100, message: 'Invalid media id' })).toBe(true);
    expect(isUnknownMediaError({ code: 100, message: '(#100) Invalid parameter', details: 'Parameter to is not a valid phone number' })).toBe(false);
    expect(isUnknownMediaError({ code: 100, message: '(#100) Invalid parameter' })).toBe(false);
  });
  test('other codes never', () => {
    expect(isUnknownMediaError({ code: 131000, message: 'media' })).toBe(false);
    expect(isUnknownMediaError({ code: null, message: "image['id']" })).toBe(false);
  });
});
