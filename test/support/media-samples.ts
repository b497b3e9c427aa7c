/** Small files with the first bytes of each media type WhatsApp accepts (and a few it refuses). */
const pad = (head: number[] | Buffer, size = 64) => Buffer.concat([Buffer.from(head), Buffer.alloc(Math.max(0, size - Buffer.from(head).length), 0x20)]);
export const samples = {
  jpeg: pad([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46]),
  png: pad([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]),
  pdf: pad(Buffer.from('%PDF-1.7\n%âãÏÓ\n')),
  webpStatic: pad(Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x40, 0, 0, 0]), Buffer.from('WEBPVP8 ')])),
  webpAnimated: pad(Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x40, 0, 0, 0]), Buffer.from('WEBPVP8X'), Buffer.from([10, 0, 0, 0, 0x12, 0, 0, 0])])),
  mp4: pad(Buffer.concat([Buffer.from([0, 0, 0, 0x20]), Buffer.from('ftypisom'), Buffer.from([0, 0, 2, 0])])),
  m4a: pad(Buffer.concat([Buffer.from([0, 0, 0, 0x20]), Buffer.from('ftypM4A '), Buffer.from([0, 0, 2, 0])])),
  threeGp: pad(Buffer.concat([Buffer.from([0, 0, 0, 0x14]), Buffer.from('ftyp3gp4'), Buffer.from([0, 0, 2, 0])])),
  mp3: pad(Buffer.from('ID3\u0004\u0000\u0000')),
  mp3Frame: pad([0xff, 0xfb, 0x90, 0x64]),
  aac: pad([0xff, 0xf1, 0x50, 0x80]),
  amr: pad(Buffer.from('#!AMR\n')),
  oggOpus: pad(Buffer.concat([Buffer.from('OggS'), Buffer.alloc(24), Buffer.from('OpusHead')])),
  oggVorbis: pad(Buffer.concat([Buffer.from('OggS'), Buffer.alloc(24), Buffer.from('\u0001vorbis')])),
  doc: pad([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]),
  docx: pad(Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from('....[Content_Types].xml....word/document.xml')])),
  xlsx: pad(Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from('....xl/workbook.xml')])),
  text: Buffer.from('Price list 2026\nBlue widget — 12 €\n', 'utf8'),
};
