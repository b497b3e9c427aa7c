CREATE TABLE "contact_identities" (
	"channel_account_id" uuid NOT NULL,
	"identity" text NOT NULL,
	"kind" text NOT NULL,
	"contact_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "media_objects" ALTER COLUMN "data_base64" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "channel_accounts" ADD COLUMN "allowed_origins" jsonb;--> statement-breakpoint
ALTER TABLE "credit_reservations" ADD COLUMN "workflow_id" text;--> statement-breakpoint
ALTER TABLE "leads" ADD COLUMN "phone" text;--> statement-breakpoint
ALTER TABLE "leads" ADD COLUMN "bsuid" text;--> statement-breakpoint
ALTER TABLE "leads" ADD COLUMN "parent_bsuid" text;--> statement-breakpoint
ALTER TABLE "leads" ADD COLUMN "username" text;--> statement-breakpoint
ALTER TABLE "media_objects" ADD COLUMN "data" "bytea";--> statement-breakpoint
ALTER TABLE "contact_identities" ADD CONSTRAINT "contact_identities_channel_account_id_channel_accounts_id_fk" FOREIGN KEY ("channel_account_id") REFERENCES "public"."channel_accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "contact_identities_account_identity_uq" ON "contact_identities" USING btree ("channel_account_id","identity");--> statement-breakpoint
CREATE INDEX "credit_reservations_held_idx" ON "credit_reservations" USING btree ("created_at") WHERE "credit_reservations"."status" = 'held';--> statement-breakpoint
CREATE INDEX "messages_lead_updated_idx" ON "messages" USING btree ("lead_id","updated_at");--> statement-breakpoint
ALTER TABLE "media_objects" ADD CONSTRAINT "media_objects_has_bytes" CHECK ("media_objects"."data" is not null or "media_objects"."data_base64" is not null);