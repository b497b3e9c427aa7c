/**
 * Opt-out in the lead workflow: what a STOP or START phrase does (the suppression list, the
 * sequence, the confirmation) and whether the AI may answer a suppressed contact. The decisions
 * are the pure policy in policy/opt-out.ts; this is the wiring.
 */
import { DATABASE, database } from './proxies';
import { contactSuppressed, sendOutbound } from './outbound';
import { mayContact, OPTED_OUT, type OptTurn } from './policy/opt-out';
import { event, guarded } from './records';
import type { LeadRun } from './run';
import { stopSequence } from './transitions';

/**
 * The lead wrote STOP (or START): the suppression list changes (and records the event); an
 * opt-out stops the running sequence whatever it stops on, and sends the agent's confirmation
 * once (only when the contact was not suppressed already).
 */
export async function applyOptPhrase(run: LeadRun, last: NonNullable<OptTurn['last']>): Promise<void> {
  const { state } = run;
  const r = await guarded(
    run,
    `apply ${last.action}`,
    () =>
      database.applyOptPhrase.executeWithOptions(run.options(DATABASE, last.action === 'opt_out' ? 'Opt-out: add to the suppression list' : 'Opt-in: remove from the suppression list'), [
        { tenantId: run.tenantId, channelAccountId: run.channelAccountId, contactId: run.contactId, leadId: run.leadId, ...last },
      ]),
    { changed: false, suppressionIds: [] },
  );
  state.optedOut = last.action === 'opt_out';
  run.changed();
  run.showDetails();
  if (last.action !== 'opt_out') return;
  await stopSequence(run, 'opted_out');
  const text = run.optOut.confirmationText;
  if (r.changed && text) await sendOutbound(run, { kind: 'text', text }, 'opt-out confirmation');
}

/** Whether the AI may answer now: always, unless the contact is suppressed and the agent does not reply after an opt-out. */
export async function aiMayAnswer(run: LeadRun): Promise<boolean> {
  if (run.optOut.replyAfterOptOut) return true;
  const suppressed = await contactSuppressed(run);
  if (mayContact('ai_reply', { suppressed, replyAfterOptOut: false })) return true;
  await event(run, 'reply_suppressed', { reason: OPTED_OUT });
  return false;
}
