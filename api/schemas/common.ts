/**
 * Building blocks of the documented response schemas (api/openapi.ts): the wire form of what
 * the routes answer (JSON: a Date is an ISO string). Response objects are strict (an answer with
 * a field the document does not name fails the tests' response check), so the document is exact.
 */
import { z } from 'zod';

/** A timestamp as JSON carries it: `2026-11-29T17:00:00.000Z`. */
export const timestamp = z.iso.datetime({ offset: true });
export const uuid = z.uuid();

/** Every list: one page of items and the cursor of the next one (null: this was the last page). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.strictObject({ items: z.array(item), nextCursor: z.string().nullable().meta({ description: 'Pass as `?cursor=` for the next page; null on the last page' }) });
}

/** Free-form JSON an integrator defined (metadata, extracted fields, event data). */
export const jsonObject = z.record(z.string(), z.unknown());
