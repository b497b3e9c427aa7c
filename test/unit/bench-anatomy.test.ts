import type { temporal } from '@temporalio/proto';
import { msToTs } from '@temporalio/common/lib/time';
import Long from 'long';
import { sliceTurn } from '../../bench/anatomy';

type Ev = temporal.api.history.v1.IHistoryEvent;

/** A tiny history builder: each event one ms after the previous, ids from 1. */
function history() {
  const events: Ev[] = [];
  let t = 1_000_000;
  const add = (attrs: Omit<Ev, 'eventId' | 'eventTime'>, at?: number): Long => {
    t = at ?? t + 1;
    const id = events.length + 1;
    const eventId = Long.fromNumber(id);
    events.push({ eventId, eventTime: msToTs(t), ...attrs });
    return eventId;
  };
  const wft = () => {
    const s = add({ workflowTaskScheduledEventAttributes: {} });
    const st = add({ workflowTaskStartedEventAttributes: { scheduledEventId: s } });
    add({ workflowTaskCompletedEventAttributes: { scheduledEventId: s, startedEventId: st } });
  };
  const activity = (name: string) => {
    const s = add({ activityTaskScheduledEventAttributes: { activityType: { name } } });
    const st = add({ activityTaskStartedEventAttributes: { scheduledEventId: s } });
    add({ activityTaskCompletedEventAttributes: { scheduledEventId: s, startedEventId: st } });
    wft();
  };
  const marker = (activityType: string) =>
    add({
      markerRecordedEventAttributes: {
        markerName: 'core_local_activity',
        details: { data: { payloads: [{ data: Buffer.from(JSON.stringify({ seq: 1, activity_type: activityType })) }] } },
      },
    });
  return { events, add, wft, activity, marker, now: () => t };
}

describe('bench turn anatomy (sliceTurn)', () => {
  it('counts a first turn from the start to the send activity, and to idle before the next input', () => {
    const h = history();
    h.add({ workflowExecutionStartedEventAttributes: {} }); // 1
    h.add({ workflowExecutionSignaledEventAttributes: { signalName: 'inbound' } }); // 2
    h.wft(); // 3-5
    h.activity('recordInbound'); // 6-11
    h.activity('sendWhatsAppText'); // 12-17 (completed = 14)
    h.activity('captureCredit'); // 18-23
    const nextAt = h.now() + 1000;
    h.add({ workflowExecutionSignaledEventAttributes: { signalName: 'inbound' } }, nextAt); // 24
    h.wft();
    const s = sliceTurn(h.events)!;
    expect(s.startIndex).toBe(0);
    expect(s.eventsToSend).toBe(14);
    // WFTs completed up to the send: the first, the one after recordInbound
    expect(s.workflowTasksToSend).toBe(2);
    expect(s.eventsToIdle).toBe(23);
    expect(s.workflowTasksToIdle).toBe(4);
  });

  it('starts an ordinary turn at the first input at or after the webhook time', () => {
    const h = history();
    h.add({ workflowExecutionStartedEventAttributes: {} });
    h.add({ workflowExecutionSignaledEventAttributes: { signalName: 'inbound' } });
    h.wft();
    h.activity('sendWhatsAppText');
    const from = h.now() + 500;
    h.add({ workflowExecutionSignaledEventAttributes: { signalName: 'inbound' } }, from + 3); // index 11
    h.wft();
    h.activity('generateReply');
    h.activity('sendWhatsAppText');
    const s = sliceTurn(h.events, { from })!;
    expect(s.startIndex).toBe(11);
    expect(s.eventsToSend).toBe(1 + 3 + 6 + 3);
    expect(s.eventsToIdle).toBe(1 + 3 + 6 + 6);
    expect(s.workflowTasksToIdle).toBe(3);
  });

  it('finds the send among local activities (markers) by name, or by the reply time whatever the names', () => {
    const h = history();
    h.add({ workflowExecutionStartedEventAttributes: {} });
    const from = h.now() + 100;
    h.add({ workflowExecutionSignaledEventAttributes: { signalName: 'inbound' } }, from); // index 1
    h.wft(); // 2-4
    h.marker('prepareTurn'); // 5
    h.add({ markerRecordedEventAttributes: { markerName: 'core_patch' } });
    h.wft(); // 6-8
    const replyAt = h.now() + 1;
    h.marker('replyTurn'); // 9
    h.add({ timerStartedEventAttributes: { timerId: '1' } }); // 10
    const byName = sliceTurn(h.events, { from, replyAt })!;
    expect(byName.eventsToSend).toBe(10);
    expect(byName.workflowTasksToSend).toBe(2);
    expect(byName.localActivities).toEqual({ prepareTurn: 1, replyTurn: 1 });
    expect(byName.otherMarkers).toEqual({ core_patch: 1 });
    expect(byName.eventsToIdle).toBe(11);

    const h2 = history();
    h2.add({ workflowExecutionStartedEventAttributes: {} });
    h2.add({ workflowExecutionSignaledEventAttributes: { signalName: 'inbound' } });
    h2.wft();
    h2.marker('doStuff'); // 5 (index 5)
    const at = h2.now() + 10;
    h2.add({ markerRecordedEventAttributes: { markerName: 'core_patch' } }, at); // not a completion
    h2.add({ timerStartedEventAttributes: { timerId: '1' } }, at);
    h2.wft();
    h2.marker('deliver'); // unnamed send, after the reply time
    const s2 = sliceTurn(h2.events, { replyAt: at })!;
    expect(s2.sendDoneIndex).toBe(h2.events.length - 1);
    // without a reply time and no matching name there is no send
    expect(sliceTurn(h2.events)!.sendDoneIndex).toBeUndefined();
  });
});
