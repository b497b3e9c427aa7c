import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SA } from '../workflows/lead/search-attributes';

export { SA };

/** The same list in the CLI's `--search-attribute Name=Type` form. */
export const SEARCH_ATTRIBUTE_CLI_TYPES: Record<keyof typeof SA, string> = {
  TenantId: 'Keyword',
  ChannelAccountId: 'Keyword',
  LeadId: 'Keyword',
  Channel: 'Keyword',
  LeadStage: 'Keyword',
  LeadMode: 'Keyword',
  LastInboundAt: 'Datetime',
  NeedsAttention: 'Bool',
  WindowClosesAt: 'Datetime',
  LeadScore: 'Int',
};

export function searchAttributeCliArgs(): string[] {
  return Object.entries(SEARCH_ATTRIBUTE_CLI_TYPES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]);
}

const INDEXED_TYPE: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  Bool: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Int: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
};

/**
 * Register Parley's search attributes on a running server (the dev server gets them on its
 * command line instead). Idempotent: attributes that already exist are left alone.
 */
export async function registerSearchAttributes(connection: Pick<Connection, 'operatorService'>, namespace: string): Promise<string[]> {
  let known = new Set<string>();
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    known = new Set(Object.keys(existing.customAttributes ?? {}));
  } catch (err) {
    // The time-skipping test server implements AddSearchAttributes but not List: add them all.
    if ((err as { code?: number }).code !== 12 /* UNIMPLEMENTED */) throw err;
  }
  const missing = Object.entries(SEARCH_ATTRIBUTE_CLI_TYPES).filter(([name]) => !known.has(name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, INDEXED_TYPE[type]!])),
  });
  return missing.map(([name]) => name);
}
