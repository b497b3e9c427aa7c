import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Parley's custom search attributes (workflow-safe: only @temporalio/common): what sales ops filter on in the Web UI. */
export const SA = {
  TenantId: defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD),
  ChannelAccountId: defineSearchAttributeKey('ChannelAccountId', SearchAttributeType.KEYWORD),
  LeadId: defineSearchAttributeKey('LeadId', SearchAttributeType.KEYWORD),
  Channel: defineSearchAttributeKey('Channel', SearchAttributeType.KEYWORD),
  LeadStage: defineSearchAttributeKey('LeadStage', SearchAttributeType.KEYWORD),
  LeadMode: defineSearchAttributeKey('LeadMode', SearchAttributeType.KEYWORD),
  LastInboundAt: defineSearchAttributeKey('LastInboundAt', SearchAttributeType.DATETIME),
  NeedsAttention: defineSearchAttributeKey('NeedsAttention', SearchAttributeType.BOOL),
  /** 24 hours after the lead's last message: `WindowClosesAt > now` finds leads whose window is open. */
  WindowClosesAt: defineSearchAttributeKey('WindowClosesAt', SearchAttributeType.DATETIME),
  LeadScore: defineSearchAttributeKey('LeadScore', SearchAttributeType.INT),
} as const;

