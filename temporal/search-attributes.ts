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
};

export function searchAttributeCliArgs(): string[] {
  return Object.entries(SEARCH_ATTRIBUTE_CLI_TYPES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]);
}
