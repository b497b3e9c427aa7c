/**
 * The media library's pure parts: which files WhatsApp takes (type, magic bytes, size per kind)
 * and the signed public media url tokens.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { checkMedia, contentMatchesType, isAnimatedWebp, normalizeMimeType, sniffMimeType } from '../../contract/media-types';
import { createMediaUrlTokens, mediaUrlSecret } from '../../services/media-url-tokens';
import { cleanFilename } from '../../api/routes/media-library';
import { samples } from '../support/media-samples';

const MB = 1024 * 1024;

describe('media types (WhatsApp Cloud API)', () => {
  test.each([
    ['image/jpeg', samples.jpeg, 'image'],
    ['image/png', samples.png, 'image'],
    ['image/webp', samples.webpStatic, 'sticker'],
    ['video/mp4', samples.mp4, 'video'],
    ['video/3gpp', samples.threeGp, 'video'],
    ['audio/mp4', samples.m4a, 'audio'],
    ['audio/mpeg', samples.mp3, 'audio'],
    ['audio/mpeg', samples.mp3Frame, 'audio'],
    ['audio/aac', samples.aac, 'audio'],
    ['audio/amr', samples.amr, 'audio'],
    ['audio/ogg', samples.oggOpus, 'audio'],
    ['application/pdf', samples.pdf, 'document'],
    ['application/msword', samples.doc, 'document'],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', samples.docx, 'document'],
    ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', samples.xlsx, 'document'],
    ['text/plain; charset=utf-8', samples.text, 'document'],
  ])('%s is accepted when its bytes match', (type, data, kind) => {
    expect(checkMedia({ declaredType: type, data, maxBytes: 16 * MB })).toMatchObject({ ok: true, kind });
  });

  test('aliases normalise: image/jpg, video/3gp, audio/mp3', () => {
    expect(normalizeMimeType('IMAGE/JPG')).toBe('image/jpeg');
    expect(normalizeMimeType('video/3gp')).toBe('video/3gpp');
    expect(checkMedia({ declaredType: 'audio/mp3', data: samples.mp3, maxBytes: MB })).toMatchObject({ ok: true, mimeType: 'audio/mpeg' });
  });

  test('a declared type the bytes contradict is 415 with the reason', () => {
    const r = checkMedia({ declaredType: 'image/png', data: samples.jpeg, maxBytes: MB });
    expect(r).toEqual({ ok: false, status: 415, reason: expect.stringContaining('not image/png') });
    // a PDF called a Word file, an HTML page called text/plain with a NUL, a zip that is no docx
    expect(checkMedia({ declaredType: 'application/msword', data: samples.pdf, maxBytes: MB }).ok).toBe(false);
    expect(checkMedia({ declaredType: 'text/plain', data: Buffer.from('abc\u0000def'), maxBytes: MB }).ok).toBe(false);
    expect(checkMedia({ declaredType: 'text/plain', data: Buffer.from([0x61, 0xff, 0xfe]), maxBytes: MB }).ok).toBe(false);
    expect(contentMatchesType('application/vnd.openxmlformats-officedocument.wordprocessingml.document', samples.xlsx)).toBe(false);
    expect(contentMatchesType('video/3gpp', samples.mp4)).toBe(false);
  });

  test('Ogg without Opus is refused (WhatsApp takes Opus only)', () => {
    const r = checkMedia({ declaredType: 'audio/ogg', data: samples.oggVorbis, maxBytes: MB });
    expect(r).toMatchObject({ ok: false, status: 415, reason: expect.stringContaining('Opus') });
  });

  test('types WhatsApp does not take are 415: gif, html, zip, svg, exe', () => {
    for (const t of ['image/gif', 'text/html', 'application/zip', 'image/svg+xml', 'application/x-msdownload']) {
      expect(checkMedia({ declaredType: t, data: samples.jpeg, maxBytes: MB })).toMatchObject({ ok: false, status: 415, reason: expect.stringContaining(t) });
    }
    expect(checkMedia({ declaredType: 'image/jpeg', data: Buffer.alloc(0), maxBytes: MB })).toMatchObject({ ok: false, status: 415 });
  });

  test('size limits per kind: image 5 MB, static sticker 100 KB, animated 500 KB, and the deployment cap', () => {
    const big = (head: Buffer, size: number) => Buffer.concat([head, Buffer.alloc(size - head.length)]);
    expect(checkMedia({ declaredType: 'image/jpeg', data: big(samples.jpeg, 5 * MB), maxBytes: 16 * MB }).ok).toBe(true);
    expect(checkMedia({ declaredType: 'image/jpeg', data: big(samples.jpeg, 5 * MB + 1), maxBytes: 16 * MB })).toMatchObject({ ok: false, status: 413, reason: expect.stringContaining("WhatsApp's limit for image") });
    expect(checkMedia({ declaredType: 'image/webp', data: big(samples.webpStatic, 100 * 1024 + 1), maxBytes: 16 * MB })).toMatchObject({ ok: false, status: 413, reason: expect.stringContaining('static sticker') });
    expect(isAnimatedWebp(samples.webpAnimated)).toBe(true);
    expect(checkMedia({ declaredType: 'image/webp', data: big(samples.webpAnimated, 300 * 1024), maxBytes: 16 * MB })).toMatchObject({ ok: true, animated: true });
    expect(checkMedia({ declaredType: 'image/webp', data: big(samples.webpAnimated, 500 * 1024 + 1), maxBytes: 16 * MB })).toMatchObject({ ok: false, status: 413 });
    expect(checkMedia({ declaredType: 'application/pdf', data: big(samples.pdf, 2 * MB), maxBytes: MB })).toMatchObject({ ok: false, status: 413, reason: expect.stringContaining('MEDIA_LIBRARY_MAX_BYTES') });
  });

  test('application/octet-stream is recognised where the first bytes name one type', () => {
    expect(sniffMimeType(samples.png)).toBe('image/png');
    expect(sniffMimeType(samples.m4a)).toBe('audio/mp4');
    expect(sniffMimeType(samples.mp4)).toBe('video/mp4');
    expect(checkMedia({ declaredType: 'application/octet-stream', data: samples.pdf, maxBytes: MB })).toMatchObject({ ok: true, mimeType: 'application/pdf' });
    expect(checkMedia({ declaredType: 'application/octet-stream', data: samples.text, maxBytes: MB })).toMatchObject({ ok: false, status: 415 });
  });

  test('file names lose paths and control characters', () => {
    expect(cleanFilename('C:\\Users\\x\\price list.pdf')).toBe('price list.pdf');
    expect(cleanFilename('../../etc/passwd')).toBe('passwd');
    expect(cleanFilename('a"b\u0000c\r\n.pdf')).toBe('abc.pdf');
    expect(cleanFilename('..')).toBeUndefined();
    expect(cleanFilename('x'.repeat(300))).toHaveLength(200);
  });
});

describe('signed media url tokens', () => {
  const tokens = createMediaUrlTokens(randomBytes(32));
  const tenantId = randomUUID();
  const mediaId = randomUUID();
  const inOneHour = () => new Date(Date.now() + 3_600_000);

  test('a token verifies to its tenant, file and expiry', () => {
    const expiresAt = inOneHour();
    const token = tokens.sign({ tenantId, mediaId, expiresAt });
    expect(token).toMatch(/^mu1\.[A-Za-z0-9_-]{54}\.[A-Za-z0-9_-]{43}$/);
    const v = tokens.verify(token);
    expect(v).toEqual({ ok: true, tenantId, mediaId, expiresAt: new Date(Math.floor(expiresAt.getTime() / 1000) * 1000) });
  });

  test('expired, tampered, foreign-key and malformed tokens are refused', () => {
    const token = tokens.sign({ tenantId, mediaId, expiresAt: inOneHour() });
    expect(tokens.verify(token, new Date(Date.now() + 3_601_000))).toEqual({ ok: false, reason: 'expired' });
    // another file id in the payload, the signature kept
    const [p, payload, sig] = token.split('.') as [string, string, string];
    const raw = Buffer.from(payload, 'base64url');
    raw[20] = raw[20]! ^ 0x01;
    expect(tokens.verify(`${p}.${raw.toString('base64url')}.${sig}`)).toEqual({ ok: false, reason: 'bad_signature' });
    // a later expiry, the signature kept
    raw[20] = raw[20]! ^ 0x01;
    raw.writeBigUInt64BE(raw.readBigUInt64BE(32) + 86_400n, 32);
    expect(tokens.verify(`${p}.${raw.toString('base64url')}.${sig}`)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(createMediaUrlTokens(randomBytes(32)).verify(token)).toEqual({ ok: false, reason: 'bad_signature' });
    for (const bad of ['', 'mu1..', 'x'.repeat(5000), token.replace('mu1', 'mu2'), `${token}.x`]) expect(tokens.verify(bad)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  test('the key comes from MEDIA_URL_SECRET or is derived from the encryption key (not equal to it)', () => {
    const key = randomBytes(32).toString('base64');
    const derived = mediaUrlSecret({ PARLEY_ENCRYPTION_KEY: key });
    expect(derived).toHaveLength(32);
    expect(derived.equals(Buffer.from(key, 'base64'))).toBe(false);
    expect(mediaUrlSecret({ MEDIA_URL_SECRET: 's'.repeat(40), PARLEY_ENCRYPTION_KEY: key }).toString()).toBe('s'.repeat(40));
    expect(() => createMediaUrlTokens(Buffer.alloc(8))).toThrow();
  });
});
