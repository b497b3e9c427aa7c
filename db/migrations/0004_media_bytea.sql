ALTER TABLE "media_objects" ALTER COLUMN "data_base64" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "media_objects" ADD COLUMN "data" "bytea";--> statement-breakpoint
ALTER TABLE "media_objects" ADD CONSTRAINT "media_objects_has_bytes" CHECK ("media_objects"."data" is not null or "media_objects"."data_base64" is not null);