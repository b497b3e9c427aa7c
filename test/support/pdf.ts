import { createDeflate, deflateSync } from 'node:zlib';

/** A one-page PDF with one line of text per entry (Helvetica), written by hand: objects, xref table, trailer. */
export function tinyPdf(lines: string[]): Buffer {
  return multiPagePdf([lines]);
}

/**
 * A one-page PDF whose content stream is `inflatedBytes` of spaces, FlateDecode-compressed
 * `layers` times (a "PDF bomb": 1 layer is ~1,000:1, 2 layers turn a gigabyte into a few KB).
 * Deflated in slices: the inflated bytes are never in this process's memory at once.
 */
export async function flateBombPdf(inflatedBytes: number, layers = 1): Promise<Buffer> {
  let data = await deflateRepeated(Buffer.alloc(1024 * 1024, ' '), inflatedBytes);
  for (let i = 1; i < layers; i++) data = deflateSync(data, { level: 9 });
  const filter = `[${Array.from({ length: layers }, () => '/FlateDecode').join(' ')}]`;
  const stream = Buffer.concat([Buffer.from(`<< /Length ${data.length} /Filter ${filter} >>\nstream\n`, 'latin1'), data, Buffer.from('\nendstream', 'latin1')]);
  return writePdf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    stream,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ]);
}

/** `slice` repeated until `total` bytes, deflated as one stream. */
async function deflateRepeated(slice: Buffer, total: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (b: Buffer) => out.push(b));
  const done = new Promise<void>((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  for (let written = 0; written < total; written += slice.length) {
    const piece = total - written < slice.length ? slice.subarray(0, total - written) : slice;
    if (!deflate.write(piece)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  return Buffer.concat(out);
}

/** A PDF of `pages` pages, each with `lines` lines of text (Helvetica). */
export function multiPagePdf(pages: string[][]): Buffer {
  const esc = (t: string) => t.replace(/[()\\]/g, (c) => `\\${c}`);
  const font = 3 + 2 * pages.length;
  const objects = ['<< /Type /Catalog /Pages 2 0 R >>', `<< /Type /Pages /Kids [${pages.map((_, i) => `${3 + 2 * i} 0 R`).join(' ')}] /Count ${pages.length} >>`];
  pages.forEach((lines, i) => {
    const stream = `BT /F1 12 Tf 14 TL 72 720 Td ${lines.map((l) => `(${esc(l)}) '`).join(' ')} ET`;
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${4 + 2 * i} 0 R /Resources << /Font << /F1 ${font} 0 R >> >> >>`);
    objects.push(`<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`);
  });
  objects.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  return writePdf(objects);
}

/** A PDF file of these objects (numbered from 1; a Buffer is written as it is): header, objects, xref table, trailer. */
function writePdf(objects: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let length = 0;
  const push = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
    parts.push(buf);
    length += buf.length;
  };
  push('%PDF-1.4\n');
  objects.forEach((o, i) => {
    offsets.push(length);
    push(typeof o === 'string' ? `${i + 1} 0 obj\n${o}\nendobj\n` : Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, 'latin1'), o, Buffer.from('\nendobj\n', 'latin1')]));
  });
  const xref = length;
  push(`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`);
  push(`trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(parts);
}
