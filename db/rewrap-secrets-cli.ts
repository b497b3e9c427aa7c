/**
 * `npm run secrets:rewrap`: re-encrypt every channel secret, webhook signing secret and payload data key under the current
 * PARLEY_ENCRYPTION_KEY (after a rotation: the previous key in PARLEY_ENCRYPTION_KEYS_OLD), and
 * move legacy v1 values to the current format. Safe to run while Parley runs, and to run again.
 */
import { loadConfig } from '../config';
import { createSecretBox, parseEncryptionKey, parseEncryptionKeys } from '../lib/crypto';
import { createLogger } from '../lib/logger';
import { rewrapChannelSecrets } from '../services/channels';
import { rewrapWebhookSecrets } from '../services/webhook-endpoints';
import { rewrapPayloadKeys } from '../services/payload-keys';
import { openDatabase } from './client';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.LOG_LEVEL }).child({ module: 'rewrap-secrets' });
  if (!config.PARLEY_ENCRYPTION_KEY) throw new Error('PARLEY_ENCRYPTION_KEY is not set');
  const box = createSecretBox(parseEncryptionKey(config.PARLEY_ENCRYPTION_KEY), parseEncryptionKeys(config.PARLEY_ENCRYPTION_KEYS_OLD));
  const database = await openDatabase({ url: config.DATABASE_URL, pgliteDataDir: config.PGLITE_DATA_DIR, max: 1 });
  try {
    const result = await rewrapChannelSecrets(database.db, box);
    log.info({ checked: result.checked, rewrapped: result.rewrapped, failed: result.failed.length }, 'channel secrets re-encrypted');
    if (result.failed.length > 0) {
      log.error({ channelAccountIds: result.failed }, 'no configured key opens these channel secrets; add the key that wrote them to PARLEY_ENCRYPTION_KEYS_OLD');
      process.exitCode = 1;
    }
    const hooks = await rewrapWebhookSecrets(database.db, box);
    log.info({ checked: hooks.checked, rewrapped: hooks.rewrapped, failed: hooks.failed.length }, 'webhook signing secrets re-encrypted');
    if (hooks.failed.length > 0) {
      log.error({ webhookEndpointIds: hooks.failed }, 'no configured key opens these webhook signing secrets; add the key that wrote them to PARLEY_ENCRYPTION_KEYS_OLD');
      process.exitCode = 1;
    }
    const keys = await rewrapPayloadKeys(database.db, box);
    log.info({ checked: keys.checked, rewrapped: keys.rewrapped, failed: keys.failed.length }, 'payload data keys re-wrapped');
    if (keys.failed.length > 0) {
      log.error({ payloadKeyIds: keys.failed }, 'no configured key opens these payload data keys; add the key that wrote them to PARLEY_ENCRYPTION_KEYS_OLD');
      process.exitCode = 1;
    }
  } finally {
    await database.close();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
