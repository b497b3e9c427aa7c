CREATE TABLE "media_channel_uploads" (
	"media_id" uuid NOT NULL,
	"channel_account_id" uuid NOT NULL,
	"meta_media_id" text NOT NULL,
	"uploaded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "media_library" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"mime_type" text NOT NULL,
	"filename" text,
	"size_bytes" integer NOT NULL,
	"sha256" text NOT NULL,
	"data" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "media_channel_uploads" ADD CONSTRAINT "media_channel_uploads_media_id_media_library_id_fk" FOREIGN KEY ("media_id") REFERENCES "public"."media_library"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "media_channel_uploads" ADD CONSTRAINT "media_channel_uploads_channel_account_id_channel_accounts_id_fk" FOREIGN KEY ("channel_account_id") REFERENCES "public"."channel_accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "media_library" ADD CONSTRAINT "media_library_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "media_channel_uploads_media_channel_uq" ON "media_channel_uploads" USING btree ("media_id","channel_account_id");--> statement-breakpoint
CREATE UNIQUE INDEX "media_library_tenant_sha256_uq" ON "media_library" USING btree ("tenant_id","sha256");--> statement-breakpoint
CREATE INDEX "media_library_tenant_created_idx" ON "media_library" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
ALTER TABLE "media_library" ALTER COLUMN "data" SET STORAGE EXTERNAL;