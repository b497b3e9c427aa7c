ALTER TABLE "channel_accounts" ADD COLUMN "allowed_origins" jsonb;--> statement-breakpoint
CREATE INDEX "messages_lead_updated_idx" ON "messages" USING btree ("lead_id","updated_at");