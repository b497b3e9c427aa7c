/**
 * Ingestion of one knowledge-base document (issue 11), started by the API when a document is
 * added or re-indexed, with id `kb-document:{documentId}:{generation}` (a re-index is the next
 * generation). Steps, each an activity with a summary in the Web UI: prepare (fetch a url with the
 * SSRF rules, parse, chunk, store the chunks), embed the chunks in batches, finish (ready). A
 * failure no retry can fix (unreadable PDF, a url answering 404, a refused url, the embeddings
 * endpoint refusing the request) or retries running out marks the document failed with the error;
 * the workflow itself completes. Payloads hold ids and counts only (no text, no title, no url).
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, type RetryPolicy } from '@temporalio/workflow';
import type { createKnowledgeActivities } from '../activities/knowledge/ingest';
import { KNOWLEDGE_NON_RETRYABLE } from '../contract/failures';

export const KNOWLEDGE_DOCUMENT_WORKFLOW_TYPE = 'knowledgeDocumentWorkflow';

export interface KnowledgeDocumentInput {
  tenantId: string;
  knowledgeBaseId: string;
  documentId: string;
  generation: number;
}

export interface KnowledgeDocumentResult {
  status: 'ready' | 'failed' | 'gone';
  chunkCount: number;
  error?: string;
}

type KnowledgeActivities = ReturnType<typeof createKnowledgeActivities>;

const retry: RetryPolicy = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 6, nonRetryableErrorTypes: [...KNOWLEDGE_NON_RETRYABLE] };
const acts = proxyActivities<KnowledgeActivities>({ startToCloseTimeout: '5 minutes', retry });
const finishing = proxyActivities<KnowledgeActivities>({ startToCloseTimeout: '30 seconds', retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' } });

function describeFailure(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return `${cause.type ?? 'error'}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}

export async function knowledgeDocumentWorkflow(input: KnowledgeDocumentInput): Promise<KnowledgeDocumentResult> {
  const ref = { documentId: input.documentId, generation: input.generation };
  let chunkCount = 0;
  try {
    const prepared = await acts.prepareKnowledgeDocument.executeWithOptions({ startToCloseTimeout: '5 minutes', retry, summary: 'Fetch, parse and chunk the document' }, [ref]);
    if (prepared.gone) return { status: 'gone', chunkCount: 0 };
    chunkCount = prepared.chunkCount;
    const batches = Math.ceil(chunkCount / prepared.batchSize);
    for (let b = 0; b < batches; b++) {
      const from = b * prepared.batchSize;
      const r = await acts.embedKnowledgeChunks.executeWithOptions({ startToCloseTimeout: '5 minutes', retry, summary: `Embed chunks ${from + 1}–${Math.min(from + prepared.batchSize, chunkCount)} of ${chunkCount} (batch ${b + 1}/${batches})` }, [
        { ...ref, from, to: from + prepared.batchSize },
      ]);
      if (r.gone) return { status: 'gone', chunkCount: 0 };
    }
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const error = describeFailure(err);
    await finishing.finishKnowledgeDocument.executeWithOptions({ startToCloseTimeout: '30 seconds', summary: 'Mark the document failed' }, [{ ...ref, status: 'failed', error }]);
    return { status: 'failed', chunkCount: 0, error };
  }
  const done = await finishing.finishKnowledgeDocument.executeWithOptions({ startToCloseTimeout: '30 seconds', summary: 'Mark the document ready' }, [{ ...ref, status: 'ready' }]);
  return done.updated ? { status: 'ready', chunkCount } : { status: 'gone', chunkCount: 0 };
}

/** `kb-document:{documentId}:{generation}` */
export function knowledgeDocumentWorkflowId(documentId: string, generation: number): string {
  return `kb-document:${documentId}:${generation}`;
}
