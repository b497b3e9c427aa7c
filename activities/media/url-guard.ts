/**
 * Where media downloads may go (SSRF guard). Every hop of a download, the first url and each
 * redirect, must be https, on a Meta host, and resolve only to public addresses (IPv4 and
 * IPv6, IPv4-mapped and NAT64 forms included). The one exception is explicit: the origins in
 * `trustedOrigins` (the deployment's own GRAPH_API_URL, which an operator set; in tests the
 * local fake Graph API) are not checked.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Hosts Meta serves media from (and their subdomains): WhatsApp lookaside urls, Instagram attachments. */
export const META_MEDIA_HOST_SUFFIXES = ['fbsbx.com', 'fbcdn.net', 'cdninstagram.com', 'facebook.com', 'instagram.com', 'whatsapp.net'];

/** Resolves a host name to every address it has (v4 and v6). */
export type ResolveHost = (hostname: string) => Promise<string[]>;

export const systemResolver: ResolveHost = async (hostname) => (await lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

function ipv4Parts(ip: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}

function ipv4IsPublic(ip: string): boolean {
  const p = ipv4Parts(ip);
  if (!p) return false;
  const [a, b, c] = p as [number, number, number, number];
  if (a === 0 || a === 10 || a === 127) return false; // this network, private, loopback
  if (a === 100 && b >= 64 && b <= 127) return false; // carrier-grade NAT
  if (a === 169 && b === 254) return false; // link-local (cloud metadata)
  if (a === 172 && b >= 16 && b <= 31) return false; // private
  if (a === 192 && b === 168) return false; // private
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return false; // IETF protocol assignments, TEST-NET-1
  if (a === 198 && (b === 18 || b === 19)) return false; // benchmarking
  if (a === 198 && b === 51 && c === 100) return false; // TEST-NET-2
  if (a === 203 && b === 0 && c === 113) return false; // TEST-NET-3
  if (a >= 224) return false; // multicast, reserved, broadcast
  return true;
}

/** Eight 16-bit groups of an IPv6 address (with an embedded dotted IPv4 tail), or undefined. */
function ipv6Groups(ip: string): number[] | undefined {
  let s = ip.toLowerCase().replace(/^\[|\]$/g, '');
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const v4 = /(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(s);
  if (v4) {
    const p = ipv4Parts(v4[1]!);
    if (!p) return undefined;
    s = `${s.slice(0, -v4[1]!.length)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail].map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN));
  return groups.length === 8 && groups.every((g) => Number.isFinite(g)) ? groups : undefined;
}

function ipv6IsPublic(ip: string): boolean {
  const g = ipv6Groups(ip);
  if (!g) return false;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0) {
    if (g5 === 0xffff) return ipv4IsPublic(v4(g6, g7)); // ::ffff:a.b.c.d (IPv4-mapped)
    if (g5 === 0) return g6 !== 0 && ipv4IsPublic(v4(g6, g7)) && !(g6 === 0 && g7 <= 1); // ::, ::1, ::a.b.c.d (IPv4-compatible)
    return false;
  }
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return ipv4IsPublic(v4(g6, g7)); // NAT64
  if (g0 === 0x2002) return ipv4IsPublic(v4(g1, g2)); // 6to4 embeds an IPv4 address
  if ((g0 & 0xfe00) === 0xfc00) return false; // unique local fc00::/7
  if ((g0 & 0xffc0) === 0xfe80 || (g0 & 0xffc0) === 0xfec0) return false; // link-local, site-local
  if ((g0 & 0xff00) === 0xff00) return false; // multicast
  if (g0 === 0x2001 && g1 === 0x0db8) return false; // documentation
  if (g0 === 0x2001 && g1 === 0) return false; // Teredo
  if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return false; // discard-only
  return true;
}

/** True for a public unicast address; false for private, loopback, link-local, reserved and anything unparsable. */
export function isPublicAddress(ip: string): boolean {
  const kind = isIP(ip.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
  if (kind === 4) return ipv4IsPublic(ip);
  if (kind === 6) return ipv6IsPublic(ip);
  return false;
}

export function isMetaMediaHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return META_MEDIA_HOST_SUFFIXES.some((s) => host === s || host.endsWith(`.${s}`));
}

export type UrlVerdict = { ok: true; trusted: boolean; address?: string } | { ok: false; reason: string };

/**
 * May a download (or a redirect hop) go to `url`? For an untrusted origin: https, a Meta media
 * host, every resolved address public; `address` is one of them, to connect to (no second lookup).
 */
export async function checkMediaUrl(url: URL, opts: { trustedOrigins: ReadonlySet<string>; resolve: ResolveHost }): Promise<UrlVerdict> {
  if (opts.trustedOrigins.has(url.origin)) return { ok: true, trusted: true };
  if (url.protocol !== 'https:') return { ok: false, reason: `${url.protocol.replace(':', '')} is not allowed (https only)` };
  if (url.username || url.password) return { ok: false, reason: 'credentials in the url are not allowed' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return { ok: false, reason: `address ${host} is not a Meta media host` };
  if (!isMetaMediaHost(host)) return { ok: false, reason: `host ${host} is not a Meta media host` };
  let addresses: string[];
  try {
    addresses = await opts.resolve(host);
  } catch (err) {
    return { ok: false, reason: `host ${host} does not resolve: ${(err as Error).message}` };
  }
  if (addresses.length === 0) return { ok: false, reason: `host ${host} has no address` };
  const blocked = addresses.find((a) => !isPublicAddress(a));
  if (blocked) return { ok: false, reason: `host ${host} resolves to a non-public address (${blocked})` };
  return { ok: true, trusted: false, address: addresses[0] };
}
