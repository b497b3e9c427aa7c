/**
 * The media a tenant may keep in its library and send: the types and sizes the WhatsApp Cloud
 * API documents ("Supported media types", developers.facebook.com/docs/whatsapp/cloud-api/reference/media),
 * and a check of each file's first bytes (its magic number) against the type it declares.
 *
 * | kind | MIME types | WhatsApp limit |
 * | --- | --- | --- |
 * | image | image/jpeg, image/png | 5 MB |
 * | video | video/mp4, video/3gpp (H.264 + AAC) | 16 MB |
 * | audio | audio/aac, audio/amr, audio/mpeg, audio/mp4, audio/ogg (Opus only) | 16 MB |
 * | document | text/plain, application/pdf, Word, Excel, PowerPoint (old and OOXML) | 100 MB |
 * | sticker | image/webp | 100 KB static, 500 KB animated |
 *
 * Meta's "MB" is 1024 × 1024 bytes here (the stricter reading would be 1,000,000; files between
 * the two are rare and Meta's own upload answers the last word). A deployment may cap every kind
 * lower (MEDIA_LIBRARY_MAX_BYTES): the library keeps its bytes in PostgreSQL.
 *
 * Pure and workflow-safe (no Node APIs): the send path may check `link` media with it too.
 */

export const MEDIA_KINDS = ['image', 'video', 'audio', 'document', 'sticker'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

const MB = 1024 * 1024;
const KB = 1024;

/** The most bytes WhatsApp takes for each kind (stickers: the animated limit; static ones are checked apart). */
export const WHATSAPP_MEDIA_MAX_BYTES: Record<MediaKind, number> = {
  image: 5 * MB,
  video: 16 * MB,
  audio: 16 * MB,
  document: 100 * MB,
  sticker: 500 * KB,
};
export const WHATSAPP_STATIC_STICKER_MAX_BYTES = 100 * KB;

/** Accepted MIME type → its kind (the names Meta's upload endpoint takes). */
export const ACCEPTED_MEDIA_TYPES: Readonly<Record<string, MediaKind>> = {
  'image/jpeg': 'image',
  'image/png': 'image',
  'image/webp': 'sticker',
  'video/mp4': 'video',
  'video/3gpp': 'video',
  'audio/aac': 'audio',
  'audio/amr': 'audio',
  'audio/mpeg': 'audio',
  'audio/mp4': 'audio',
  'audio/ogg': 'audio',
  'text/plain': 'document',
  'application/pdf': 'document',
  'application/msword': 'document',
  'application/vnd.ms-excel': 'document',
  'application/vnd.ms-powerpoint': 'document',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'document',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'document',
};

/** Names clients send for the same types. */
const ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'video/3gp': 'video/3gpp',
  'audio/mp3': 'audio/mpeg',
  'audio/x-m4a': 'audio/mp4',
  'audio/m4a': 'audio/mp4',
  'audio/opus': 'audio/ogg',
  'audio/x-aac': 'audio/aac',
};

/** A declared Content-Type as the library names it: lower case, no parameters, aliases resolved. */
export function normalizeMimeType(declared: string | undefined): string | undefined {
  const base = declared?.split(';')[0]?.trim().toLowerCase();
  if (!base) return undefined;
  return ALIASES[base] ?? base;
}

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0): boolean => b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);
const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));
const textAt = (b: Uint8Array, at: number, len: number): string => String.fromCharCode(...b.subarray(at, at + len));

/** Whether `needle` (ASCII) occurs in `b` (OOXML part names in a zip's directory). */
function containsAscii(b: Uint8Array, needle: string): boolean {
  const n = ascii(needle);
  const first = n[0];
  outer: for (let i = b.indexOf(first!); i !== -1 && i <= b.length - n.length; i = b.indexOf(first!, i + 1)) {
    for (let j = 1; j < n.length; j++) if (b[i + j] !== n[j]) continue outer;
    return true;
  }
  return false;
}

const ZIP = [0x50, 0x4b, 0x03, 0x04];
const OLE2 = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];

/** An ISO base media file (MP4, M4A, 3GP): `ftyp` box at byte 4; its major brand. */
function isoBrand(b: Uint8Array): string | undefined {
  return startsWith(b, ascii('ftyp'), 4) && b.length >= 12 ? textAt(b, 8, 4) : undefined;
}

/** MPEG audio frame sync (11 bits set) with a layer other than 00 (00 = AAC in ADTS). */
const isMpegAudioFrame = (b: Uint8Array) => b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && (b[1]! & 0x06) !== 0;
/** AAC in ADTS: sync 0xFFF, layer 00. */
const isAdts = (b: Uint8Array) => b.length >= 2 && b[0] === 0xff && (b[1]! & 0xf6) === 0xf0;

/** Plain text: valid UTF-8 (BOM allowed) without NUL bytes. */
function isPlainText(b: Uint8Array): boolean {
  if (b.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Whether the file's bytes are what the (normalized, accepted) MIME type says. */
export function contentMatchesType(mimeType: string, b: Uint8Array): boolean {
  switch (mimeType) {
    case 'image/jpeg':
      return startsWith(b, [0xff, 0xd8, 0xff]);
    case 'image/png':
      return startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    case 'image/webp':
      return startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8);
    case 'video/mp4':
      return isoBrand(b) !== undefined;
    case 'video/3gpp':
      return isoBrand(b)?.startsWith('3g') === true;
    case 'audio/mp4':
      return isoBrand(b) !== undefined;
    case 'audio/aac':
      return isAdts(b) || startsWith(b, ascii('ADIF'));
    case 'audio/amr':
      return startsWith(b, ascii('#!AMR'));
    case 'audio/mpeg':
      return startsWith(b, ascii('ID3')) || isMpegAudioFrame(b);
    case 'audio/ogg':
      // Meta takes Ogg with the Opus codec only: the first page's packet is `OpusHead`
      return startsWith(b, ascii('OggS')) && containsAscii(b.subarray(0, 128), 'OpusHead');
    case 'application/pdf':
      return startsWith(b, ascii('%PDF-'));
    case 'application/msword':
    case 'application/vnd.ms-excel':
    case 'application/vnd.ms-powerpoint':
      return startsWith(b, OLE2);
    case 'application/vnd.openxmlformats-officedocument.wordprocessingml.document':
      return startsWith(b, ZIP) && containsAscii(b, 'word/');
    case 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet':
      return startsWith(b, ZIP) && containsAscii(b, 'xl/');
    case 'application/vnd.openxmlformats-officedocument.presentationml.presentation':
      return startsWith(b, ZIP) && containsAscii(b, 'ppt/');
    case 'text/plain':
      return isPlainText(b);
    default:
      return false;
  }
}

/** An animated WebP: a VP8X header whose animation flag is set. */
export function isAnimatedWebp(b: Uint8Array): boolean {
  return startsWith(b, ascii('VP8X'), 12) && b.length > 20 && (b[20]! & 0x02) !== 0;
}

/** The type of a file sent as `application/octet-stream`, where its first bytes name one type only. */
export function sniffMimeType(b: Uint8Array): string | undefined {
  const unique = ['image/jpeg', 'image/png', 'image/webp', 'application/pdf', 'audio/amr', 'audio/ogg', 'video/3gpp'];
  const hit = unique.find((t) => contentMatchesType(t, b));
  if (hit) return hit;
  const brand = isoBrand(b);
  if (brand) return brand.startsWith('M4A') ? 'audio/mp4' : 'video/mp4';
  return undefined;
}

export type MediaCheck =
  | { ok: true; mimeType: string; kind: MediaKind; animated?: boolean }
  | { ok: false; status: 413 | 415; reason: string };

/**
 * Whether a file may enter the library: an accepted type (415 otherwise), bytes that match it
 * (415), within WhatsApp's limit for its kind and the deployment's cap (413).
 */
export function checkMedia(input: { declaredType: string | undefined; data: Uint8Array; maxBytes: number }): MediaCheck {
  const declared = normalizeMimeType(input.declaredType);
  const mimeType = !declared || declared === 'application/octet-stream' ? sniffMimeType(input.data) : declared;
  if (!mimeType) return { ok: false, status: 415, reason: 'the file type could not be recognised: declare its Content-Type (e.g. image/jpeg, application/pdf)' };
  const kind = ACCEPTED_MEDIA_TYPES[mimeType];
  if (!kind) {
    return { ok: false, status: 415, reason: `${mimeType} is not a type WhatsApp accepts (accepted: ${Object.keys(ACCEPTED_MEDIA_TYPES).join(', ')})` };
  }
  if (input.data.length === 0) return { ok: false, status: 415, reason: 'the file is empty' };
  if (!contentMatchesType(mimeType, input.data)) {
    const ogg = mimeType === 'audio/ogg' ? ' (WhatsApp takes Ogg audio with the Opus codec only)' : '';
    return { ok: false, status: 415, reason: `the file's content is not ${mimeType}: its first bytes do not match the declared type${ogg}` };
  }
  const animated = kind === 'sticker' ? isAnimatedWebp(input.data) : undefined;
  const whatsapp = kind === 'sticker' && !animated ? WHATSAPP_STATIC_STICKER_MAX_BYTES : WHATSAPP_MEDIA_MAX_BYTES[kind];
  const limit = Math.min(whatsapp, input.maxBytes);
  if (input.data.length > limit) {
    const why = limit < whatsapp ? "this deployment's limit (MEDIA_LIBRARY_MAX_BYTES)" : `WhatsApp's limit for ${animated === false ? 'a static sticker' : animated ? 'an animated sticker' : `${kind} files`}`;
    return { ok: false, status: 413, reason: `the file is ${input.data.length} bytes, over ${why} of ${limit} bytes` };
  }
  return { ok: true, mimeType, kind, ...(animated !== undefined ? { animated } : {}) };
}
