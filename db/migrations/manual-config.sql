-- Backfill for 0006_config (agent and sequence versions): every agent and sequence that existed
-- before versions were kept gets its current settings recorded as its version 1 (created_by NULL).
-- Run once after the generated migration; safe to run again.
INSERT INTO agent_versions (tenant_id, agent_id, version, name, system_prompt, model, fallback_model, temperature, stage_prompts, extraction_fields, handoff_keywords, created_at)
SELECT tenant_id, id, version, name, system_prompt, model, fallback_model, temperature, stage_prompts, extraction_fields, handoff_keywords, created_at FROM agents
ON CONFLICT (agent_id, version) DO NOTHING;

INSERT INTO sequence_versions (tenant_id, sequence_id, version, name, steps, stop_on, created_at)
SELECT tenant_id, id, version, name, steps, stop_on, created_at FROM sequences
ON CONFLICT (sequence_id, version) DO NOTHING;
