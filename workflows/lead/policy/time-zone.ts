/**
 * A lead's time zone when nobody set one: guessed from the phone number's country calling
 * code (WhatsApp wa_id) or the country a business-scoped user id starts with, else UTC. Countries spanning several zones get their most populous.
 */
const BY_CALLING_CODE: [prefix: string, timeZone: string][] = [
  ['971', 'Asia/Dubai'],
  ['966', 'Asia/Riyadh'],
  ['880', 'Asia/Dhaka'],
  ['234', 'Africa/Lagos'],
  ['254', 'Africa/Nairobi'],
  ['351', 'Europe/Lisbon'],
  ['353', 'Europe/Dublin'],
  ['91', 'Asia/Kolkata'],
  ['92', 'Asia/Karachi'],
  ['62', 'Asia/Jakarta'],
  ['63', 'Asia/Manila'],
  ['65', 'Asia/Singapore'],
  ['60', 'Asia/Kuala_Lumpur'],
  ['66', 'Asia/Bangkok'],
  ['81', 'Asia/Tokyo'],
  ['82', 'Asia/Seoul'],
  ['86', 'Asia/Shanghai'],
  ['61', 'Australia/Sydney'],
  ['64', 'Pacific/Auckland'],
  ['55', 'America/Sao_Paulo'],
  ['52', 'America/Mexico_City'],
  ['54', 'America/Argentina/Buenos_Aires'],
  ['57', 'America/Bogota'],
  ['27', 'Africa/Johannesburg'],
  ['20', 'Africa/Cairo'],
  ['44', 'Europe/London'],
  ['49', 'Europe/Berlin'],
  ['33', 'Europe/Paris'],
  ['34', 'Europe/Madrid'],
  ['39', 'Europe/Rome'],
  ['31', 'Europe/Amsterdam'],
  ['90', 'Europe/Istanbul'],
  ['7', 'Europe/Moscow'],
  ['1', 'America/New_York'],
];

/** The same countries by ISO 3166 alpha-2 code: a WhatsApp business-scoped user id starts with it ("IN.1648738043044942"). */
const BY_COUNTRY: Record<string, string> = {
  AE: 'Asia/Dubai', SA: 'Asia/Riyadh', BD: 'Asia/Dhaka', NG: 'Africa/Lagos', KE: 'Africa/Nairobi', PT: 'Europe/Lisbon',
  IE: 'Europe/Dublin', IN: 'Asia/Kolkata', PK: 'Asia/Karachi', ID: 'Asia/Jakarta', PH: 'Asia/Manila', SG: 'Asia/Singapore',
  MY: 'Asia/Kuala_Lumpur', TH: 'Asia/Bangkok', JP: 'Asia/Tokyo', KR: 'Asia/Seoul', CN: 'Asia/Shanghai', AU: 'Australia/Sydney',
  NZ: 'Pacific/Auckland', BR: 'America/Sao_Paulo', MX: 'America/Mexico_City', AR: 'America/Argentina/Buenos_Aires',
  CO: 'America/Bogota', ZA: 'Africa/Johannesburg', EG: 'Africa/Cairo', GB: 'Europe/London', DE: 'Europe/Berlin',
  FR: 'Europe/Paris', ES: 'Europe/Madrid', IT: 'Europe/Rome', NL: 'Europe/Amsterdam', TR: 'Europe/Istanbul',
  RU: 'Europe/Moscow', US: 'America/New_York', CA: 'America/Toronto',
};

export function guessTimeZone(contactId: string): string {
  const bsuidCountry = /^([A-Z]{2})\.(?:ENT\.)?[A-Za-z0-9]+$/.exec(contactId)?.[1];
  if (bsuidCountry) return BY_COUNTRY[bsuidCountry] ?? 'UTC';
  if (!/^\d{6,20}$/.test(contactId)) return 'UTC';
  for (const [prefix, tz] of BY_CALLING_CODE) if (contactId.startsWith(prefix)) return tz;
  return 'UTC';
}
