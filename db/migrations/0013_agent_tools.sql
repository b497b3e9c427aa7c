ALTER TABLE "agent_versions" ADD COLUMN "tools" jsonb;--> statement-breakpoint
ALTER TABLE "agent_versions" ADD COLUMN "follow_up_template" jsonb;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "tools" jsonb;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "follow_up_template" jsonb;