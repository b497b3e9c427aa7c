/**
 * Why a knowledge document cannot be indexed as it is. Both are final (the same bytes fail the same
 * way again): the ingestion activity turns them into non-retryable ApplicationFailures.
 */

/** A document that can never be indexed as it is (unreadable, empty, unsupported, refused): not retried. `knowledge_document_rejected` */
export class DocumentRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentRejected';
  }
}

/**
 * A document over a parsing limit (activities/knowledge/parse-sandbox.ts): more memory or time than
 * the parser is given, more pages, more text. `knowledge_parse_limit`
 */
export class ParseLimitExceeded extends DocumentRejected {
  constructor(message: string) {
    super(message);
    this.name = 'ParseLimitExceeded';
  }
}
