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
    .replace(/^\s{0,3}#{1,6}\s+/gm, '')
    .replace(/^\s{0,3}>\s?/gm, '')
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

/** The document's plain text; DocumentRejected when there is none to index. */
export async function parseDocument(data: Buffer, mimeType: KnowledgeMimeType): Promise<string> {
  let text: string;
  if (mimeType === 'application/pdf') text = await pdfToText(data);
  else if (mimeType === 'text/html') {
    try {
      text = htmlToText(decodeText(data));
    } catch (err) {
      if (err instanceof DocumentRejected) throw err;
      // the same bytes fail the same way: final, not retried
      throw new DocumentRejected(`the HTML could not be read: ${(err as Error).message}`.slice(0, 300));
    }
  }
  else if (mimeType === 'text/markdown') text = markdownToText(decodeText(data));
  else text = decodeText(data);
  // pdf-parse marks page breaks with `-- 1 of 3 --` lines
  text = text.replace(/^-- \d+ of \d+ --$/gm, '').split('\u0000').join('');
  if (text.trim() === '') throw new DocumentRejected(`the document has no text to index (${mimeType})`);
  return text;
}
