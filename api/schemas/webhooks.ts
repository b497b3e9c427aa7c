/**
 * Response schemas of the outbound webhook routes (api/routes/webhook-endpoints.ts): the wire
 * form of services/webhook-endpoints.ts. The signing secret is only in the answers of a
 * creation and a rotation (`secret`).
 */
import { z } from 'zod';
import { WEBHOOK_DELIVERY_STATUSES, WEBHOOK_EVENT_TYPES } from '../../services/webhook-endpoints';
import { timestamp, uuid } from './common';

const endpointFields = {
  id: uuid,
  url: z.string(),
  description: z.string().nullable(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  enabled: z.boolean().meta({ description: 'false: no new deliveries (disabled by PATCH, or after repeated failed deliveries)' }),
  disabledAt: timestamp.nullable(),
  disabledReason: z.enum(['manual', 'failures']).nullable(),
  consecutiveFailures: z.number().int().meta({ description: 'Failed deliveries in a row (a delivered one resets it); WEBHOOK_DISABLE_AFTER_FAILURES disables the endpoint' }),
  createdAt: timestamp,
  updatedAt: timestamp,
};

export const webhookEndpointSchema = z.strictObject(endpointFields).meta({ id: 'WebhookEndpoint', description: 'An outbound webhook endpoint; its signing secret is never returned here' });

export const webhookEndpointWithSecretSchema = z
  .strictObject({
    ...endpointFields,
    secret: z.string().meta({ description: 'The signing secret (`whsec_` + base64, Standard Webhooks), shown this once: store it now' }),
  })
  .meta({ id: 'WebhookEndpointWithSecret' });

export const webhookDeliverySchema = z
  .strictObject({
    id: uuid,
    endpointId: uuid,
    eventId: z.string().meta({ description: 'The `webhook-id` header: the same on every attempt' }),
    eventType: z.enum(WEBHOOK_EVENT_TYPES),
    status: z.enum(WEBHOOK_DELIVERY_STATUSES),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable().meta({ description: "The last attempt's HTTP status; null when it got no answer (timeout, network error, refused url)" }),
    lastResponse: z.string().nullable().meta({ description: "At most 500 characters of the last answer's body, or the error" }),
    lastAttemptAt: timestamp.nullable(),
    completedAt: timestamp.nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'WebhookDelivery' });
