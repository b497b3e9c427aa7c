/**
 * WhatsApp business-scoped user ids (BSUID): Meta's per-business identifier of a WhatsApp
 * user, sent with or instead of the phone number since usernames (April 2026). Format: an
 * ISO 3166 alpha-2 country code, a period, up to 128 alphanumeric characters
 * ("US.13491208655302741918"); a parent BSUID (shared by linked business portfolios) has
 * "ENT." after the country ("US.ENT.11815799212886844830"). A phone number (wa_id) is digits.
 */
export const BSUID_PATTERN = /^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$/;

export function isBsuid(value: string): boolean {
  return BSUID_PATTERN.test(value);
}
