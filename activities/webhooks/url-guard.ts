/**
 * Where an outbound webhook may go (SSRF guard), with the media fetch's address rules
 * (activities/media/url-guard.ts `isPublicAddress`):
 *
 * - production: https only, no credentials in the url, and every address the host resolves to
 *   public (no private, loopback, link-local, CGNAT, reserved, IPv4-mapped or NAT64 forms of them);
 * - `allowLocal` (NODE_ENV development or test): http too, and loopback addresses (a receiver on
 *   this machine); private and link-local addresses are still refused.
 *
 * Checked at registration (the url's form, an IP literal) and again on every delivery attempt on
 * the resolved address, which is the one connected to (no second DNS answer: DNS rebinding).
 */
import { isIP } from 'node:net';
import { isPublicAddress, systemResolver, type ResolveHost } from '../media/url-guard';

/** `transient`: the host did not resolve now (retried); any other refusal is final. */
export type WebhookUrlVerdict = { ok: true; address: string } | { ok: false; reason: string; transient?: boolean };

function isLoopback(ip: string): boolean {
  const a = ip.replace(/^\[|\]$/g, '').toLowerCase();
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === '::1' || /^::ffff:127\./.test(a);
}

function addressAllowed(ip: string, allowLocal: boolean): boolean {
  return isPublicAddress(ip) || (allowLocal && isLoopback(ip));
}

/** The url's form alone (registration): scheme, credentials, an IP literal's address, `localhost` in production. */
export function checkWebhookUrlForm(raw: string, opts: { allowLocal: boolean }): { ok: true } | { ok: false; reason: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a valid url' };
  }
  const schemes = opts.allowLocal ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(url.protocol)) return { ok: false, reason: `${url.protocol.replace(':', '')} is not allowed (${opts.allowLocal ? 'http or https' : 'https only'})` };
  if (url.username || url.password) return { ok: false, reason: 'credentials in the url are not allowed' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !addressAllowed(host, opts.allowLocal)) return { ok: false, reason: `address ${host} is not public` };
  if (!opts.allowLocal && /(^|\.)localhost\.?$/i.test(host)) return { ok: false, reason: `host ${host} is not public` };
  return { ok: true };
}

/** The url's form and every address its host resolves to, now (each delivery attempt); `address` is the one to connect to. */
export async function checkWebhookUrl(raw: string, opts: { allowLocal: boolean; resolve?: ResolveHost }): Promise<WebhookUrlVerdict> {
  const form = checkWebhookUrlForm(raw, opts);
  if (!form.ok) return form;
  const host = new URL(raw).hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return { ok: true, address: host };
  let addresses: string[];
  try {
    addresses = await (opts.resolve ?? systemResolver)(host);
  } catch (err) {
    return { ok: false, reason: `host ${host} does not resolve: ${(err as Error).message}`, transient: true };
  }
  if (addresses.length === 0) return { ok: false, reason: `host ${host} has no address`, transient: true };
  const blocked = addresses.find((a) => !addressAllowed(a, opts.allowLocal));
  if (blocked) return { ok: false, reason: `host ${host} resolves to a non-public address (${blocked})` };
  return { ok: true, address: addresses[0]! };
}
