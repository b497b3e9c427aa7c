ALTER TABLE "channel_accounts" ADD COLUMN "waba_id" text;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "source" text DEFAULT 'local' NOT NULL;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "status" text;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "meta_template_id" text;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "waba_id" text;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "components" jsonb;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "quality_score" text;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "status_reason" text;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "events" jsonb;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "synced_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "templates" ADD COLUMN "updated_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "channel_accounts_waba_idx" ON "channel_accounts" USING btree ("waba_id");--> statement-breakpoint
CREATE INDEX "templates_waba_idx" ON "templates" USING btree ("waba_id","meta_template_id");