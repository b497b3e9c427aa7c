/**
 * Parley's payload codec: every payload Parley puts into Temporal (workflow inputs, signals,
 * updates, query results, activity inputs and results, memo, failure details) is the whole
 * serialized `Payload` proto encrypted with AES-256-GCM under the data key of the workflow that
 * owns it (services/payload-keys.ts: one key per lead workflow, one platform key for the rest).
 *
 * Encoded payload: metadata `encoding: binary/encrypted`, `encryption-key-id: <key id>`; data
 * `iv (12 bytes) | ciphertext | tag (16 bytes)`, with the key id as associated data.
 *
 * The SDK passes a serialization context (workflow id) to the codec on the client and the
 * worker; a call without one (a path that has none) encrypts with the platform key. Decoding
 * needs no context: the key id in the metadata names the key. Payloads without that encoding
 * (histories recorded before the codec, test/replay) pass through unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec, SerializationContext } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { PayloadKey } from '../services/payload-keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Where the codec finds its keys (services/payload-keys.ts). */
export interface PayloadKeyStore {
  forWorkflow(workflowId: string | undefined): Promise<PayloadKey>;
  byId(keyId: string): Promise<PayloadKey>;
}

const utf8 = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/** True when a payload was encoded by this codec. */
export function isEncrypted(p: Payload): boolean {
  return utf8(p.metadata?.encoding) === ENCRYPTED_ENCODING;
}

/** The key id an encrypted payload names. */
export function keyIdOf(p: Payload): string | undefined {
  return isEncrypted(p) ? utf8(p.metadata?.[KEY_ID_METADATA]) : undefined;
}

export function encryptPayload(p: Payload, key: PayloadKey): Payload {
  const plain = temporal.api.common.v1.Payload.encode(p).finish();
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(key.id, 'utf8'));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return {
    metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(key.id) },
    data: Buffer.concat([iv, ct, cipher.getAuthTag()]),
  };
}

export function decryptPayload(p: Payload, key: PayloadKey): Payload {
  const data = Buffer.from(p.data ?? new Uint8Array());
  if (data.length < IV_BYTES + TAG_BYTES) throw new Error('encrypted payload: too short');
  const decipher = createDecipheriv('aes-256-gcm', key.key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(key.id, 'utf8'));
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
  const decoded = temporal.api.common.v1.Payload.decode(plain);
  return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
}

function workflowIdOf(context: SerializationContext | undefined): string | undefined {
  return context?.workflowId;
}

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keys: PayloadKeyStore) {}

  async encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    if (payloads.length === 0 || payloads.every(isEncrypted)) return payloads;
    const key = await this.keys.forWorkflow(workflowIdOf(context));
    return payloads.map((p) => (isEncrypted(p) ? p : encryptPayload(p, key)));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (p) => {
        if (!isEncrypted(p)) return p;
        const keyId = keyIdOf(p);
        if (!keyId) throw new Error(`encrypted payload without ${KEY_ID_METADATA} metadata`);
        return decryptPayload(p, await this.keys.byId(keyId));
      }),
    );
  }
}

export function createPayloadCodec(keys: PayloadKeyStore): PayloadCodec {
  return new EncryptionCodec(keys);
}
