/**
 * The updates sales ops send from the Temporal Web UI ("Send an update" on a lead's page, a small
 * JSON body): hand off, hand back, pause or resume the sequence, send a manual message. Each body
 * is checked by policy/web-ui.ts in the validator (a bad body is rejected with the reason and
 * never reaches the history); each runs the same code as the API's setMode, sequence and
 * sendMessage updates, and is recorded as the Web UI's doing (source `web_ui` in the lead's events).
 */
import { setHandler, uuid4 } from '@temporalio/workflow';
import {
  handBackUpdate,
  handOffUpdate,
  pauseSequenceUpdate,
  resumeSequenceUpdate,
  sendManualMessageUpdate,
  type ModeRequest,
  type OutboundRequest,
  type OutboundResult,
  type SequenceCommand,
} from './definitions';
import { checkEmpty, checkHandOff, checkManualMessage, type WebUiCheck } from './policy/web-ui';
import { event } from './records';
import type { LeadRun } from './run';
import { changeMode, commandSequence, modeTransition, sequenceTransition } from './transitions';

const SOURCE = 'web_ui';

/** The value of a check, or the validator's rejection with its reason. */
function accepted<T>(check: WebUiCheck<T>): T {
  if (!check.ok) throw new Error(check.reason);
  return check.value;
}

export function registerWebUiHandlers(
  run: LeadRun,
  manual: {
    sendMessage: (req: OutboundRequest) => Promise<OutboundResult>;
    checkMessage: (req: Omit<OutboundRequest, 'source'>) => void;
  },
): void {
  const mode = (name: string, request: ModeRequest, check: (input: unknown) => WebUiCheck<{ reason?: string }>) => ({
    handler: async (input?: unknown) => {
      const { reason } = accepted(check(input));
      await changeMode(run, request, SOURCE, reason ? { reason } : undefined);
      return { mode: run.state.mode };
    },
    validator: (input?: unknown) => {
      accepted(check(input));
      const t = modeTransition(run, request, SOURCE);
      if (!t.ok) throw new Error(`${name}: ${t.reason}`);
    },
  });
  const handOff = mode('handOff', 'handoff', checkHandOff);
  setHandler(handOffUpdate, handOff.handler, { validator: handOff.validator });
  const handBack = mode('handBack', 'handback', (input) => checkEmpty('handBack', input));
  setHandler(handBackUpdate, handBack.handler, { validator: handBack.validator });

  const sequence = (name: string, cmd: SequenceCommand) => ({
    handler: () => commandSequence(run, cmd, SOURCE),
    validator: (input?: unknown) => {
      accepted(checkEmpty(name, input));
      const t = sequenceTransition(run, cmd);
      if (!t.ok) throw new Error(`${name}: ${t.reason}`);
    },
  });
  const pause = sequence('pauseSequence', { action: 'pause' });
  setHandler(pauseSequenceUpdate, pause.handler, { validator: pause.validator });
  const resume = sequence('resumeSequence', { action: 'resume' });
  setHandler(resumeSequenceUpdate, resume.handler, { validator: resume.validator });

  setHandler(
    sendManualMessageUpdate,
    async (input) => {
      const { text } = accepted(checkManualMessage(input));
      const requestId = uuid4();
      const sending = manual.sendMessage({ requestId, kind: 'text', text, source: 'manual' });
      await event(run, 'manual_message_requested', { requestId, source: SOURCE, chars: [...text].length });
      return sending;
    },
    {
      validator: (input) => {
        const { text } = accepted(checkManualMessage(input));
        manual.checkMessage({ requestId: '', kind: 'text', text });
      },
    },
  );
}
