/**
 * Template components (Meta's shapes → ours), the parameter checks before a send, and the
 * template webhook fields of the WhatsApp payload parser.
 */
import { parseWhatsAppWebhook } from '../../api/webhooks/whatsapp-payload';
import { whatsAppTemplateCategoryWebhook, whatsAppTemplateQualityWebhook, whatsAppTemplateStatusWebhook } from '../../fakes/meta-webhooks';
import { buildTemplateParameters, localComponents, normalizeComponents, renderTemplateText } from '../../services/template-components';

const target = { wabaId: '102290129340398', id: '806312974732579', name: 'welcome_template', language: 'en_US' };

describe('normalizeComponents', () => {
  test('named parameters are counted and sent by name', () => {
    const c = normalizeComponents([{ type: 'BODY', text: 'Hi {{first_name}}, order {{order_id}} ({{first_name}})' }], 'NAMED');
    expect(c.body).toEqual({ text: 'Hi {{first_name}}, order {{order_id}} ({{first_name}})', variables: 2, names: ['first_name', 'order_id'] });
    const p = buildTemplateParameters(c, { variables: ['Priya', '42'] });
    expect(p).toEqual({ ok: true, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Priya', parameter_name: 'first_name' }, { type: 'text', text: '42', parameter_name: 'order_id' }] }] });
  });
  test('junk and unknown component and button types never throw', () => {
    expect(normalizeComponents('x')).toEqual({ buttons: [] });
    const c = normalizeComponents([null, 3, { type: 'CAROUSEL', cards: [] }, { type: 'BUTTONS', buttons: [{ type: 'FLOW', text: 'Open' }, 'x'] }]);
    expect(c.buttons).toEqual([{ index: 0, type: 'FLOW', text: 'Open', parameter: 'none' }]);
  });
  test('a static URL button takes no parameter; a dynamic one needs its suffix', () => {
    const c = normalizeComponents([{ type: 'BUTTONS', buttons: [{ type: 'URL', text: 'Site', url: 'https://a.example/' }, { type: 'URL', text: 'T', url: 'https://a.example/{{1}}' }] }]);
    expect(c.buttons.map((b) => b.parameter)).toEqual(['none', 'url_suffix']);
    expect(buildTemplateParameters(c, {})).toEqual({ ok: false, reason: 'button 1 (URL) needs a value (the URL suffix)' });
    expect(buildTemplateParameters(c, { buttons: [{ index: 0, value: 'x' }, { index: 1, value: 'y' }] })).toEqual({ ok: false, reason: 'button 0 (URL) takes no parameter' });
    expect(buildTemplateParameters(c, { buttons: [{ index: 1, value: 'y' }, { index: 1, value: 'z' }] })).toEqual({ ok: false, reason: 'button 1 is given twice' });
  });
});

describe('buildTemplateParameters', () => {
  test('an authentication template: the code in the body and in the OTP button (sent as a url button)', () => {
    const c = normalizeComponents([{ type: 'BODY', text: '*{{1}}* is your code.' }, { type: 'BUTTONS', buttons: [{ type: 'OTP', otp_type: 'COPY_CODE', text: 'Copy' }] }]);
    expect(buildTemplateParameters(c, { variables: ['123456'], buttons: [{ index: 0, value: '123456' }] })).toEqual({
      ok: true,
      components: [
        { type: 'body', parameters: [{ type: 'text', text: '123456' }] },
        { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: '123456' }] },
      ],
    });
  });
  test('document and location headers; a header that takes nothing refuses one', () => {
    const doc = normalizeComponents([{ type: 'HEADER', format: 'DOCUMENT' }, { type: 'BODY', text: 'Your invoice' }]);
    expect(buildTemplateParameters(doc, { header: { media: { id: '998877', filename: 'invoice.pdf' } } })).toEqual({
      ok: true,
      components: [{ type: 'header', parameters: [{ type: 'document', document: { id: '998877', filename: 'invoice.pdf' } }] }],
    });
    const loc = normalizeComponents([{ type: 'HEADER', format: 'LOCATION' }, { type: 'BODY', text: 'We are here' }]);
    expect(buildTemplateParameters(loc, {})).toMatchObject({ ok: false, reason: expect.stringContaining('LOCATION') });
    expect(buildTemplateParameters(loc, { header: { location: { latitude: 1, longitude: 2 } } })).toMatchObject({ ok: true });
    const plain = normalizeComponents([{ type: 'HEADER', format: 'TEXT', text: 'Hello' }, { type: 'BODY', text: 'Hi' }]);
    expect(buildTemplateParameters(plain, { header: { text: 'x' } })).toEqual({ ok: false, reason: 'the TEXT header takes no parameter' });
    expect(buildTemplateParameters(localComponents('Hi'), { header: { text: 'x' } })).toEqual({ ok: false, reason: 'the template has no header parameter' });
  });
  test('a copy code over 15 characters and an empty body variable are refused', () => {
    const c = normalizeComponents([{ type: 'BODY', text: 'Hi {{1}}' }, { type: 'BUTTONS', buttons: [{ type: 'COPY_CODE' }] }]);
    expect(buildTemplateParameters(c, { variables: ['a'], buttons: [{ index: 0, value: 'X'.repeat(16) }] })).toMatchObject({ ok: false, reason: expect.stringContaining('15 characters') });
    expect(buildTemplateParameters(c, { variables: [' '], buttons: [{ index: 0, value: 'X' }] })).toMatchObject({ ok: false, reason: expect.stringContaining('empty') });
  });
  test('the transcript text fills header and body', () => {
    const c = normalizeComponents([{ type: 'HEADER', format: 'TEXT', text: 'Order {{1}}' }, { type: 'BODY', text: 'Hi {{1}}' }, { type: 'FOOTER', text: 'Shop' }]);
    expect(renderTemplateText(c, { header: { text: '#1' }, variables: ['Ann'] })).toBe('Order #1\nHi Ann\nShop');
  });
});

describe('parseWhatsAppWebhook: template fields', () => {
  test('the three fields, as Meta documents them', () => {
    const status = parseWhatsAppWebhook(whatsAppTemplateStatusWebhook(target, { event: 'PAUSED', reason: 'Low quality' }));
    expect(status).toMatchObject({ ok: true, changes: [], ignored: [], templateChanges: [{ wabaId: target.wabaId, field: 'message_template_status_update', at: expect.stringMatching(/^\d{4}-/), metaTemplateId: target.id, name: target.name, language: 'en_US', event: 'PAUSED', status: 'PAUSED', reason: 'Low quality' }] });
    const quality = parseWhatsAppWebhook(whatsAppTemplateQualityWebhook(target, { previous: 'GREEN', next: 'YELLOW' }));
    expect(quality).toMatchObject({ ok: true, templateChanges: [{ field: 'message_template_quality_update', previousQualityScore: 'GREEN', newQualityScore: 'YELLOW' }] });
    const category = parseWhatsAppWebhook(whatsAppTemplateCategoryWebhook(target, { previous: 'UTILITY', next: 'MARKETING' }));
    expect(category).toMatchObject({ ok: true, templateChanges: [{ field: 'template_category_update', previousCategory: 'UTILITY', newCategory: 'MARKETING' }] });
  });
  test('REINSTATED is APPROVED again; FLAGGED and unknown events set no status', () => {
    const statusOf = (event: string) => {
      const r = parseWhatsAppWebhook(whatsAppTemplateStatusWebhook(target, { event }));
      return r.ok ? r.templateChanges[0]?.status : 'not ok';
    };
    expect(statusOf('REINSTATED')).toBe('APPROVED');
    expect(statusOf('DISABLED')).toBe('DISABLED');
    expect(statusOf('FLAGGED')).toBeNull();
    expect(statusOf('SOMETHING_NEW')).toBeNull();
  });
  test("the change's time is entry.time, or the receipt time when it is absent or in the future", () => {
    const body = whatsAppTemplateStatusWebhook(target, { event: 'PAUSED' }) as { entry: { time?: unknown }[] };
    body.entry[0]!.time = 1674864290;
    const r = parseWhatsAppWebhook(body, { receivedAtMs: Date.parse('2026-01-01T00:00:00Z') });
    expect(r.ok && r.templateChanges[0]!.at).toBe('2023-01-28T00:04:50.000Z');
    body.entry[0]!.time = 9_999_999_999;
    const future = parseWhatsAppWebhook(body, { receivedAtMs: Date.parse('2026-01-01T00:00:00Z') });
    expect(future.ok && future.templateChanges[0]!.at).toBe('2026-01-01T00:00:00.000Z');
  });
  test('an entry without the account id, or a value naming no template, is ignored with a reason', () => {
    const body = whatsAppTemplateStatusWebhook(target, { event: 'PAUSED' }) as { entry: { id?: string }[] };
    delete body.entry[0]!.id;
    const r = parseWhatsAppWebhook(body);
    expect(r).toMatchObject({ ok: true, templateChanges: [], ignored: [{ path: 'entry[0].changes[0].value', reason: expect.stringContaining('entry.id') }] });
    const none = parseWhatsAppWebhook({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'template_category_update', value: { new_category: 'UTILITY' } }] }] });
    expect(none).toMatchObject({ ok: true, templateChanges: [], ignored: [{ reason: expect.stringContaining('message_template_id') }] });
  });
});
