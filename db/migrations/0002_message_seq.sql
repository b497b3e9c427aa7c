ALTER TABLE "messages" ADD COLUMN "seq" bigserial NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_lead_seq_idx" ON "messages" USING btree ("lead_id","seq");