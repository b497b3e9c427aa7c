DROP INDEX "channel_accounts_platform_phone_uq";--> statement-breakpoint
ALTER TABLE "channel_accounts" ALTER COLUMN "agent_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "channel_accounts" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "channel_accounts_platform_phone_uq" ON "channel_accounts" USING btree ("platform","phone_number_id") WHERE "channel_accounts"."deleted_at" is null;--> statement-breakpoint
ALTER TABLE "channel_accounts" ADD CONSTRAINT "channel_accounts_live_has_agent" CHECK ("channel_accounts"."deleted_at" is not null or "channel_accounts"."agent_id" is not null);