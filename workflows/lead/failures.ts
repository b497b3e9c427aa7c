/** TEMPORARY: replaced by contract/failures at merge. */
export const DELIVERY_NON_RETRYABLE = [
  'provider_permanent',
  'provider_auth',
  'channel_not_found',
  'template_not_found',
  'template_not_approved',
  'template_variables',
  'provider_reengagement',
  'provider_spam_limited',
  'channel_circuit_open',
  'not_implemented',
] as const;
export const LLM_NON_RETRYABLE = ['llm_config', 'agent_not_found', 'llm_budget_exceeded'] as const;
export const EXTRACTION_NON_RETRYABLE = ['llm_config', 'agent_not_found'] as const;
export const PERMANENT_SEND_FAILURES = ['provider_permanent', 'channel_not_found', 'template_not_found', 'template_not_approved', 'template_variables', 'not_implemented'] as const;
export const FailureType = {
  ProviderAuth: 'provider_auth',
  ChannelCircuitOpen: 'channel_circuit_open',
  ProviderReengagement: 'provider_reengagement',
  ProviderSpamLimited: 'provider_spam_limited',
  DatabaseRejected: 'database_rejected',
  InvalidTransition: 'invalid_transition',
  LeadMissing: 'lead_missing',
} as const;
