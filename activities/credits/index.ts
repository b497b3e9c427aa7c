import type { CreditService } from '../../services/credits';

export function createCreditActivities(deps: { credits: CreditService }) {
  return {
    async reserveCredit(input: { tenantId: string; reference: string }) {
      return deps.credits.reserve(input);
    },
    async captureCredit(input: { reference: string; messageId: string }) {
      return deps.credits.capture(input);
    },
    async releaseCredit(input: { reference: string }) {
      return deps.credits.release(input);
    },
  };
}
