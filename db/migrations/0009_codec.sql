CREATE TABLE "payload_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid,
	"workflow_id" text NOT NULL,
	"wrapped_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"destroyed_at" timestamp with time zone,
	CONSTRAINT "payload_keys_destroyed_ck" CHECK (("payload_keys"."wrapped_key" is null) = ("payload_keys"."destroyed_at" is not null))
);
--> statement-breakpoint
CREATE UNIQUE INDEX "payload_keys_live_workflow_uq" ON "payload_keys" USING btree ("workflow_id") WHERE "payload_keys"."destroyed_at" is null;