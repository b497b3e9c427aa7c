CREATE TABLE "suppressions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"contact" text NOT NULL,
	"forms" text[] NOT NULL,
	"source" text NOT NULL,
	"keyword" text,
	"note" text,
	"lead_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "opt_out" jsonb;--> statement-breakpoint
ALTER TABLE "suppressions" ADD CONSTRAINT "suppressions_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "suppressions" ADD CONSTRAINT "suppressions_lead_id_leads_id_fk" FOREIGN KEY ("lead_id") REFERENCES "public"."leads"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "suppressions_tenant_contact_uq" ON "suppressions" USING btree ("tenant_id","contact");--> statement-breakpoint
CREATE INDEX "suppressions_tenant_created_idx" ON "suppressions" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "suppressions_forms_idx" ON "suppressions" USING gin ("forms");--> statement-breakpoint
CREATE INDEX "contact_identities_account_contact_idx" ON "contact_identities" USING btree ("channel_account_id","contact_id");