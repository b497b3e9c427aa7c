/**
 * When a lead's run should hand over to a fresh one: when the server suggests it, or when
 * its history passes the configured event budget, and only while no turn is in flight.
 */
export function shouldContinueAsNew(input: {
  historyLength: number;
  eventBudget: number;
  serverSuggested: boolean;
  turnInFlight: boolean;
}): boolean {
  if (input.turnInFlight) return false;
  return input.serverSuggested || input.historyLength >= input.eventBudget;
}
