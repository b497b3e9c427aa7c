/**
 * Channel squatting guard: before a WhatsApp phone number id or an Instagram account id is
 * registered (and when its access token is replaced), the token must be able to read that very
 * object through the Graph API (`GET /{phone-number-id}` for WhatsApp Cloud API numbers,
 * `GET /{ig-account-id}` for Instagram professional accounts). A tenant can then only register
 * ids its own Meta token controls, so it can never receive another business's messages.
 */
import { z } from 'zod';
import { AppError } from '../lib/errors';
import { parseGraphJson, readGraphError, type GraphErrorKind } from '../lib/graph-errors';

export interface ChannelOwnershipDeps {
  graphApiUrl: string;
  graphApiVersion: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

export interface ChannelOwnershipInput {
  platform: 'whatsapp' | 'instagram';
  /** The WhatsApp phone_number_id or the Instagram professional account id. */
  accountId: string;
  accessToken: string;
}

/** Verifies that a token controls an account id; throws the AppError the API answers with. */
export type VerifyChannelOwnership = (input: ChannelOwnershipInput) => Promise<void>;

const objectSchema = z.looseObject({ id: z.string() });
/**
 * Error kinds that say "this token may not read that object" (or it does not exist): a permission
 * error (10, 200–299), an invalid parameter (100, subcode 33: "Object with ID … does not exist,
 * cannot be loaded due to missing permissions"), or an unknown id (803).
 */
const NOT_READABLE_KINDS = new Set<GraphErrorKind>(['permission_denied', 'invalid_parameter', 'object_not_found']);

export function createChannelOwnershipVerifier(deps: ChannelOwnershipDeps): VerifyChannelOwnership {
  const doFetch = deps.fetch ?? fetch;
  const base = deps.graphApiUrl.replace(/\/$/, '');
  return async ({ platform, accountId, accessToken }) => {
    const what = platform === 'whatsapp' ? `WhatsApp phone number id ${accountId}` : `Instagram account id ${accountId}`;
    const fields = platform === 'whatsapp' ? 'id,display_phone_number,verified_name' : 'id,username';
    let res: Response;
    try {
      res = await doFetch(`${base}/${deps.graphApiVersion}/${encodeURIComponent(accountId)}?fields=${fields}`, {
        headers: { authorization: `Bearer ${accessToken}` },
        signal: AbortSignal.timeout(deps.timeoutMs),
        redirect: 'error',
      });
    } catch {
      throw new AppError('unavailable', `could not reach the Graph API to verify that the access token controls ${what}; retry later`);
    }
    const json = parseGraphJson(await res.text().catch(() => ''));
    if (res.ok) {
      const obj = objectSchema.safeParse(json);
      if (obj.success && obj.data.id === accountId) return;
      throw new AppError('conflict', `the access token does not control ${what} (the Graph API answered for another object)`, undefined, 'channel_not_owned');
    }
    // by the error code; without one (not a Graph error body), by the HTTP status
    const err = readGraphError(res.status, json);
    const code = err.code;
    if (code !== undefined ? err.kind === 'token_invalid' : res.status === 401) {
      throw new AppError('update_rejected', `the Graph API refused the access token (code ${code ?? res.status}); give a valid token for ${what}`, undefined, 'access_token_invalid');
    }
    if (code !== undefined ? NOT_READABLE_KINDS.has(err.kind) : [400, 403, 404].includes(res.status)) {
      throw new AppError(
        'conflict',
        `the access token cannot read ${what} through the Graph API (code ${code ?? res.status}): it belongs to another business or does not exist; register only ids your own token controls`,
        undefined,
        'channel_not_owned',
      );
    }
    throw new AppError('unavailable', `the Graph API could not verify ${what} now (HTTP ${res.status}); retry later`);
  };
}
