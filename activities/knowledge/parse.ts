/**
 * A document's bytes to plain text, by type: text and Markdown as they are (Markdown's link
 * targets and markup characters dropped), HTML through html-to-text, PDF through pdf-parse.
 * A document that cannot be read is a `DocumentRejected` (final: the same bytes fail again).
 */
import { convert } from 'html-to-text';

export const KNOWLEDGE_MIME_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/pdf'] as const;
export type KnowledgeMimeType = (typeof KNOWLEDGE_MIME_TYPES)[number];

/** A document that can never be indexed as it is (unreadable, empty, unsupported, refused): not retried. */
export class DocumentRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentRejected';
  }
}

/** The supported type of a declared mime type and/or file name; undefined when unsupported. */
export function knowledgeMimeType(declared: string | undefined, fileName?: string, head?: Buffer): KnowledgeMimeType | undefined {
  const m = (declared ?? '').split(';')[0]!.trim().toLowerCase();
  if (m === 'text/plain' || m === 'text/markdown' || m === 'text/x-markdown' || m === 'text/html' || m === 'application/xhtml+xml' || m === 'application/pdf') {
    return m === 'text/x-markdown' ? 'text/markdown' : m === 'application/xhtml+xml' ? 'text/html' : m;
  }
  if (m === '' || m === 'application/octet-stream' || m === 'binary/octet-stream') {
    const ext = /\.([a-z0-9]+)$/i.exec(fileName ?? '')?.[1]?.toLowerCase();
    if (ext === 'txt' || ext === 'text') return 'text/plain';
    if (ext === 'md' || ext === 'markdown') return 'text/markdown';
    if (ext === 'html' || ext === 'htm') return 'text/html';
    if (ext === 'pdf') return 'application/pdf';
    if (head && head.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  }
  return undefined;
}

/** Nesting depth of HTML read, at most. */
export const HTML_MAX_DEPTH = 256;

export function htmlToText(html: string): string {
  return convert(html, {
    wordwrap: false,
    preserveNewlines: false,
    // deeper nesting is not read (html-to-text walks the tree recursively: 100,000 nested tags overflow the stack)
    limits: { maxDepth: HTML_MAX_DEPTH },
    selectors: [
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'script', format: 'skip' },
      { selector: 'style', format: 'skip' },
      { selector: 'h1', options: { uppercase: false } },
      { selector: 'h2', options: { uppercase: false } },
      { selector: 'h3', options: { uppercase: false } },
      { selector: 'h4', options: { uppercase: false } },
      { selector: 'h5', options: { uppercase: false } },
      { selector: 'h6', options: { uppercase: false } },
      { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
    ],
  });
}

/** Markdown's markup without its words: link targets, images, emphasis and heading marks. */
export function markdownToText(md: string): string {
  return md
    .replace(/```[^\n]*\n/g, '')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/^[ \t]{0,3}#{1,6}[ \t]+/gm, '')
    .replace(/^[ \t]{0,3}>[ \t]?/gm, '')
    .replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, '$2')
    .replace(/(^|[^*\w])\*(?=\S)([^*\n]*?\S)\*(?!\w)/g, '$1$2')
    .replace(/`([^`\n]+)`/g, '$1');
}

async function pdfToText(data: Buffer): Promise<string> {
  const { PDFParse } = await import('pdf-parse');
  const parser = new PDFParse({ data: new Uint8Array(data) });
  try {
    const result = await parser.getText();
    return result.text;
  } catch (err) {
    throw new DocumentRejected(`the PDF could not be read: ${(err as Error).message}`.slice(0, 300));
  } finally {
    await parser.destroy().catch(() => undefined);
  }
}

function decodeText(data: Buffer): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data).replace(/^\uFEFF/, '');
  if (text.includes('\u0000')) throw new DocumentRejected('the document is binary, not text');
  return text;
}

/** A section heading of a document (level 1 the highest), as its text appears in the parsed text. */
export interface DocumentHeading {
  level: number;
  text: string;
}

const HEADING_MAX_CHARS = 200;
const squash = (s: string) => s.replace(/[ \t\f\v\r\n\u00a0]+/g, ' ').trim();

/** Markdown's ATX headings (`#` … `######`), outside fenced code, as markdownToText renders them. */
export function markdownHeadings(md: string): DocumentHeading[] {
  const out: DocumentHeading[] = [];
  let fenced = false;
  for (const line of md.split(/\r\n?|\n/)) {
    if (/^[ \t]{0,3}(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const m = /^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$/.exec(line);
    if (!m) continue;
    const text = squash(markdownToText(m[2]!));
    if (text !== '' && text.length <= HEADING_MAX_CHARS) out.push({ level: m[1]!.length, text });
  }
  return out;
}

/** HTML's h1–h3 (h4–h6 are mostly page furniture: footers, sidebars), as htmlToText renders them. */
export function htmlHeadings(html: string): DocumentHeading[] {
  const out: DocumentHeading[] = [];
  for (const m of html.matchAll(/<h([1-3])\b[^>]*>([\s\S]*?)<\/h\1\s*>/gi)) {
    if (m[2]!.length > 10 * HEADING_MAX_CHARS) continue;
    const text = squash(htmlToText(m[2]!));
    if (text !== '' && text.length <= HEADING_MAX_CHARS) out.push({ level: Number(m[1]), text });
  }
  return out;
}

/**
 * Plain text's headings, by the typewriter convention: a line on its own (blank lines around it)
 * in capitals, e.g. `CALL-OUT FEES WITHOUT A SERVICE PLAN`; the document's first such line is
 * its title (level 1), the others level 2.
 */
export function plainTextHeadings(text: string): DocumentHeading[] {
  const out: DocumentHeading[] = [];
  for (const raw of text.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/)) {
    const lines = raw.split('\n').map(squash).filter((l) => l !== '');
    const first = lines[0];
    // a title line may carry a version or date line under it ("FYNBOS SOLAR - PRICE LIST" / "Version 4, effective 1 March 2026")
    if (!first || lines.length > (out.length === 0 ? 2 : 1) || first.length > HEADING_MAX_CHARS) continue;
    const letters = first.replace(/[^\p{L}]/gu, '');
    if (letters.length < 3 || letters !== letters.toUpperCase() || letters === letters.toLowerCase()) continue;
    out.push({ level: out.length === 0 ? 1 : 2, text: first });
  }
  return out;
}

/** A document's plain text and its section headings (for chunks to carry as context: chunk.ts). */
export interface ParsedDocument {
  text: string;
  headings: DocumentHeading[];
}

/** The document's plain text; DocumentRejected when there is none to index. */
export async function parseDocument(data: Buffer, mimeType: KnowledgeMimeType): Promise<string> {
  return (await parseDocumentWithHeadings(data, mimeType)).text;
}

/** The document's plain text and headings (none found in PDFs); DocumentRejected when there is no text to index. */
export async function parseDocumentWithHeadings(data: Buffer, mimeType: KnowledgeMimeType): Promise<ParsedDocument> {
  let text: string;
  let headings: DocumentHeading[] = [];
  if (mimeType === 'application/pdf') text = await pdfToText(data);
  else if (mimeType === 'text/html') {
    try {
      const html = decodeText(data);
      text = htmlToText(html);
      headings = htmlHeadings(html);
    } catch (err) {
      if (err instanceof DocumentRejected) throw err;
      // the same bytes fail the same way: final, not retried
      throw new DocumentRejected(`the HTML could not be read: ${(err as Error).message}`.slice(0, 300));
    }
  } else if (mimeType === 'text/markdown') {
    const md = decodeText(data);
    text = markdownToText(md);
    headings = markdownHeadings(md);
  } else {
    text = decodeText(data);
    headings = plainTextHeadings(text);
  }
  // pdf-parse marks page breaks with `-- 1 of 3 --` lines
  text = text.replace(/^-- \d+ of \d+ --$/gm, '').split('\u0000').join('');
  if (text.trim() === '') throw new DocumentRejected(`the document has no text to index (${mimeType})`);
  return { text, headings };
}
