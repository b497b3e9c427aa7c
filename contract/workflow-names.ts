/**
 * Names of Parley's workflows and of the lead workflow's messages, for code that must address
 * them without importing workflow code (activities, scripts). The typed definitions
 * (`defineSignal`, `defineUpdate`, `defineQuery`) are built from these names in
 * workflows/lead/definitions.ts; prefer those wherever workflow code may be imported.
 *
 * Workflow-safe: imports nothing. The names are on the wire (histories, running workflows).
 */

export const LEAD_WORKFLOW_TYPE = 'leadConversation';

/** The lead workflow's signal, update and query names. */
export const LeadMessage = {
  inbound: 'inbound',
  circuitClosed: 'circuitClosed',
  deliveryStatus: 'deliveryStatus',
  state: 'state',
  sequence: 'sequence',
  setStage: 'setStage',
  setMode: 'setMode',
  replayDeadLetter: 'replayDeadLetter',
  discardDeadLetter: 'discardDeadLetter',
  sendMessage: 'sendMessage',
  extractNow: 'extractNow',
  // updates for people in the Temporal Web UI ("Send an update", a small JSON body; README "Web UI for sales ops")
  handOff: 'handOff',
  handBack: 'handBack',
  pauseSequence: 'pauseSequence',
  resumeSequence: 'resumeSequence',
  sendManualMessage: 'sendManualMessage',
  // for the Web UI and the API alike: a scheduled follow-up (schedule_follow_up) cancelled
  cancelFollowUp: 'cancelFollowUp',
} as const;
export type LeadMessageName = (typeof LeadMessage)[keyof typeof LeadMessage];

// One lead workflow per (channel account, contact): its id, `lead:<channel account id>:<keyed
// digest of the contact id>`, is made outside workflow code (lib/lead-ids.ts, keyed by the
// database's lead id key) and read inside from workflowInfo().
