/**
 * Configuration and token checks of the media library (no stack): PUBLIC_BASE_URL is where signed
 * media urls (bearer credentials for a tenant's files) are built, so an http or javascript: origin
 * would hand them out in clear or as a script url; and a token has exactly one spelling.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { type ConfigError, loadConfig } from '../../config';
import { createMediaUrlTokens } from '../../services/media-url-tokens';

const prod = { NODE_ENV: 'production', PARLEY_ENCRYPTION_KEY: 'k'.repeat(64), DATABASE_URL: 'postgres://p@db:5432/parley', TEMPORAL_ADDRESS: 'temporal:7233' };
const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env, { reader: 'worker' });
    return [];
  } catch (err) {
    return (err as ConfigError).problems;
  }
};

test('PUBLIC_BASE_URL: http(s) only; https in production', () => {
  expect(problems({ PUBLIC_BASE_URL: 'javascript:alert(1)' })).toEqual([expect.stringMatching(/^PUBLIC_BASE_URL/)]);
  expect(problems({ PUBLIC_BASE_URL: 'ftp://files.example.com' })).toEqual([expect.stringMatching(/^PUBLIC_BASE_URL/)]);
  expect(loadConfig({ PUBLIC_BASE_URL: 'http://localhost:3000' }).PUBLIC_BASE_URL).toBe('http://localhost:3000');
  expect(problems({ ...prod, PUBLIC_BASE_URL: 'http://parley.example.com' })).toEqual([expect.stringMatching(/^PUBLIC_BASE_URL: .*https/)]);
  expect(loadConfig({ ...prod, PUBLIC_BASE_URL: 'https://parley.example.com' }, { reader: 'worker' }).PUBLIC_BASE_URL).toBe('https://parley.example.com');
  // no PUBLIC_BASE_URL stays allowed (library media then only goes out on WhatsApp)
  expect(problems(prod)).toEqual([]);
});

test('a signed media url has one spelling: the base64url signature with other trailing bits is refused', () => {
  const tokens = createMediaUrlTokens(randomBytes(32));
  const token = tokens.sign({ tenantId: randomUUID(), mediaId: randomUUID(), expiresAt: new Date(Date.now() + 60_000) });
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const at = alphabet.indexOf(token.at(-1)!);
  // 43 characters carry 258 bits for a 32-byte MAC: the last character's two low bits are padding
  const spellings = [0, 1, 2, 3].map((low) => token.slice(0, -1) + alphabet[(at & ~3) | low]);
  expect(spellings.filter((s) => tokens.verify(s).ok)).toEqual([token]);
});
