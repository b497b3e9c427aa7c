/**
 * Rich outbound messages (contract/rich.ts, activities/channels/rich.ts): Meta's JSON shapes for
 * each kind, every channel limit, and the documented degrade rules.
 */
import { channelForm, channelProblems, degrade, richProblems, richText, richTranscript, mediaFileProblem, type RichMessage } from '../../contract/rich';
import { instagramRichPayload, whatsAppRichPayload } from '../../activities/channels/rich';
import { webChatRich } from '../../api/routes/webchat';
import { validateGraphMessageBody, validateInstagramMessageBody } from '../../fakes/graph-api';
import { richMessageSchema, sequenceStepSchema } from '../../workflows/lead/policy/schemas';

const buttons: RichMessage = {
  kind: 'interactive',
  interactive: { type: 'button', header: { text: 'Delivery' }, body: 'When should we deliver?', footer: 'Reply any time', buttons: [{ id: 'tue', title: 'Tuesday' }, { id: 'wed', title: 'Wednesday' }] },
};
const list: RichMessage = {
  kind: 'interactive',
  interactive: {
    type: 'list',
    header: 'Our menu',
    body: 'Pick a plan',
    footer: 'Prices include tax',
    button: 'See plans',
    sections: [
      { title: 'Monthly', rows: [{ id: 'm-basic', title: 'Basic', description: '₹499 a month' }, { id: 'm-pro', title: 'Pro' }] },
      { title: 'Yearly', rows: [{ id: 'y-pro', title: 'Pro yearly', description: '₹4,999 a year' }] },
    ],
  },
};
const cta: RichMessage = { kind: 'interactive', interactive: { type: 'cta_url', body: 'Book your slot online', displayText: 'Book now', url: 'https://shop.example/book?x=1' } };
const quickReplies: RichMessage = { kind: 'interactive', interactive: { type: 'quick_replies', text: 'Which size?', replies: [{ title: 'Small', payload: 'S' }, { title: 'Large', payload: 'L' }] } };
const cards: RichMessage = {
  kind: 'interactive',
  interactive: {
    type: 'generic',
    cards: [
      {
        title: 'Red hat',
        subtitle: 'Wool, one size',
        imageUrl: 'https://shop.example/red.jpg',
        defaultUrl: 'https://shop.example/red',
        buttons: [{ type: 'web_url', title: 'View', url: 'https://shop.example/red' }, { type: 'postback', title: 'Buy', payload: 'BUY_RED' }],
      },
      { title: 'Blue hat' },
    ],
  },
};
const image: RichMessage = { kind: 'media', media: { type: 'image', link: 'https://cdn.example/p/box.png', caption: 'Your box' } };
const pdf: RichMessage = { kind: 'media', media: { type: 'document', id: '1234567890', caption: 'Price list', filename: 'prices.pdf' } };
const audio: RichMessage = { kind: 'media', media: { type: 'audio', link: 'https://cdn.example/hello.ogg' } };
const location: RichMessage = { kind: 'location', location: { latitude: 18.5204, longitude: 73.8567, name: 'Parley Store', address: 'FC Road, Pune' } };
const reaction: RichMessage = { kind: 'reaction', reaction: { messageId: 'wamid.HBgLMTIzNDU2Nzg5MBUCABIYFjNFQjA=', emoji: '👍' } };

describe('WhatsApp payloads (Cloud API message objects)', () => {
  test('reply buttons', () => {
    expect(whatsAppRichPayload(buttons)).toEqual({
      type: 'interactive',
      interactive: {
        type: 'button',
        header: { type: 'text', text: 'Delivery' },
        body: { text: 'When should we deliver?' },
        footer: { text: 'Reply any time' },
        action: { buttons: [{ type: 'reply', reply: { id: 'tue', title: 'Tuesday' } }, { type: 'reply', reply: { id: 'wed', title: 'Wednesday' } }] },
      },
    });
  });

  test('a media header on buttons and cta_url', () => {
    const m: RichMessage = { kind: 'interactive', interactive: { type: 'button', header: { media: { type: 'image', link: 'https://cdn.example/a.jpg' } }, body: 'b', buttons: [{ id: 'a', title: 'A' }] } };
    expect((whatsAppRichPayload(m).interactive as Record<string, unknown>).header).toEqual({ type: 'image', image: { link: 'https://cdn.example/a.jpg' } });
    const d: RichMessage = { kind: 'interactive', interactive: { type: 'cta_url', header: { media: { type: 'document', id: '99', filename: 'menu.pdf' } }, body: 'b', displayText: 'Open', url: 'https://x.example' } };
    expect((whatsAppRichPayload(d).interactive as Record<string, unknown>).header).toEqual({ type: 'document', document: { id: '99', filename: 'menu.pdf' } });
  });

  test('list', () => {
    expect(whatsAppRichPayload(list)).toEqual({
      type: 'interactive',
      interactive: {
        type: 'list',
        header: { type: 'text', text: 'Our menu' },
        body: { text: 'Pick a plan' },
        footer: { text: 'Prices include tax' },
        action: {
          button: 'See plans',
          sections: [
            { title: 'Monthly', rows: [{ id: 'm-basic', title: 'Basic', description: '₹499 a month' }, { id: 'm-pro', title: 'Pro' }] },
            { title: 'Yearly', rows: [{ id: 'y-pro', title: 'Pro yearly', description: '₹4,999 a year' }] },
          ],
        },
      },
    });
  });

  test('cta_url', () => {
    expect(whatsAppRichPayload(cta)).toEqual({
      type: 'interactive',
      interactive: { type: 'cta_url', body: { text: 'Book your slot online' }, action: { name: 'cta_url', parameters: { display_text: 'Book now', url: 'https://shop.example/book?x=1' } } },
    });
  });

  test('media by link and by id; audio has no caption; documents keep their filename', () => {
    expect(whatsAppRichPayload(image)).toEqual({ type: 'image', image: { link: 'https://cdn.example/p/box.png', caption: 'Your box' } });
    expect(whatsAppRichPayload(pdf)).toEqual({ type: 'document', document: { id: '1234567890', caption: 'Price list', filename: 'prices.pdf' } });
    expect(whatsAppRichPayload(audio)).toEqual({ type: 'audio', audio: { link: 'https://cdn.example/hello.ogg' } });
    expect(whatsAppRichPayload({ kind: 'media', media: { type: 'video', id: '42' } })).toEqual({ type: 'video', video: { id: '42' } });
  });

  test('location and reaction', () => {
    expect(whatsAppRichPayload(location)).toEqual({ type: 'location', location: { latitude: 18.5204, longitude: 73.8567, name: 'Parley Store', address: 'FC Road, Pune' } });
    expect(whatsAppRichPayload(reaction)).toEqual({ type: 'reaction', reaction: { message_id: 'wamid.HBgLMTIzNDU2Nzg5MBUCABIYFjNFQjA=', emoji: '👍' } });
  });

  test('a form WhatsApp lacks is refused by the builder (the workflow degrades first)', () => {
    expect(() => whatsAppRichPayload(cards)).toThrow(/degrade it first/);
  });
});

describe('Instagram payloads (Messaging API message objects)', () => {
  test('quick replies', () => {
    expect(instagramRichPayload(quickReplies)).toEqual({
      text: 'Which size?',
      quick_replies: [{ content_type: 'text', title: 'Small', payload: 'S' }, { content_type: 'text', title: 'Large', payload: 'L' }],
    });
  });

  test('generic template', () => {
    expect(instagramRichPayload(cards)).toEqual({
      attachment: {
        type: 'template',
        payload: {
          template_type: 'generic',
          elements: [
            {
              title: 'Red hat',
              subtitle: 'Wool, one size',
              image_url: 'https://shop.example/red.jpg',
              default_action: { type: 'web_url', url: 'https://shop.example/red' },
              buttons: [{ type: 'web_url', url: 'https://shop.example/red', title: 'View' }, { type: 'postback', title: 'Buy', payload: 'BUY_RED' }],
            },
            { title: 'Blue hat' },
          ],
        },
      },
    });
  });

  test('image attachment', () => {
    expect(instagramRichPayload(image)).toEqual({ attachment: { type: 'image', payload: { url: 'https://cdn.example/p/box.png' } } });
    expect(() => instagramRichPayload(location)).toThrow(/degrade it first/);
  });
});

describe('limits', () => {
  const paths = (m: RichMessage, channel: 'whatsapp' | 'instagram' | 'webchat' = 'whatsapp') => richProblems(m, channel).map((p) => `${p.path}: ${p.message}`);

  test('the examples fit', () => {
    for (const m of [buttons, list, cta, image, pdf, audio, location, reaction]) expect(paths(m)).toEqual([]);
    for (const m of [quickReplies, cards, image]) expect(paths(m, 'instagram')).toEqual([]);
  });

  test('reply buttons: at most 3, title 20, id 256, unique; body 1024, header 60, footer 60', () => {
    const four: RichMessage = { kind: 'interactive', interactive: { type: 'button', body: 'b', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ id: x, title: x })) } };
    expect(paths(four)).toEqual(['interactive.buttons: 4 buttons; allowed 1 to 3']);
    const long: RichMessage = {
      kind: 'interactive',
      interactive: { type: 'button', header: { text: 'h'.repeat(61) }, body: 'b'.repeat(1025), footer: 'f'.repeat(61), buttons: [{ id: 'i'.repeat(257), title: 't'.repeat(21) }, { id: 'x', title: 't'.repeat(21) }] },
    };
    expect(paths(long)).toEqual([
      'interactive.body: body is 1025 characters; the limit is 1024',
      'interactive.footer: footer is 61 characters; the limit is 60',
      'interactive.header.text: header text is 61 characters; the limit is 60',
      'interactive.buttons.0.id: button id is 257 characters; the limit is 256',
      'interactive.buttons.0.title: button title is 21 characters; the limit is 20',
      'interactive.buttons.1.title: button title is 21 characters; the limit is 20',
      `interactive.buttons: button title "${'t'.repeat(21)}" appears twice; each must be unique`,
    ]);
    // web chat renders more buttons
    expect(paths(four, 'webchat')).toEqual([]);
  });

  test('list: label 20, ≤ 10 sections, ≤ 10 rows in all, row title 24, description 72, section titles when several', () => {
    const rows = Array.from({ length: 11 }, (_, n) => ({ id: `r${n}`, title: `Row ${n}` }));
    const big: RichMessage = { kind: 'interactive', interactive: { type: 'list', body: 'b', button: 'b'.repeat(21), sections: [{ rows: rows.slice(0, 6) }, { rows: rows.slice(6) }] } };
    expect(paths(big)).toEqual([
      'interactive.button: button label is 21 characters; the limit is 20',
      'interactive.sections: 11 rows in all sections; allowed 1 to 10',
      'interactive.sections.0.title: a section title (more than one section) is required',
      'interactive.sections.1.title: a section title (more than one section) is required',
    ]);
    const row: RichMessage = { kind: 'interactive', interactive: { type: 'list', body: 'b', button: 'Open', sections: [{ rows: [{ id: 'a', title: 't'.repeat(25), description: 'd'.repeat(73) }] }] } };
    expect(paths(row)).toEqual(['interactive.sections.0.rows.0.title: row title is 25 characters; the limit is 24', 'interactive.sections.0.rows.0.description: row description is 73 characters; the limit is 72']);
  });

  test('cta_url: display text 20, an http(s) url', () => {
    expect(paths({ kind: 'interactive', interactive: { type: 'cta_url', body: 'b', displayText: 'd'.repeat(21), url: 'ftp://x' } })).toEqual([
      'interactive.displayText: displayText is 21 characters; the limit is 20',
      'interactive.url: url must be an http(s) URL',
    ]);
  });

  test('media: caption 1024, no caption on audio, filename for documents, link or id, supported file types', () => {
    expect(paths({ kind: 'media', media: { type: 'image', link: 'https://x.example/a.gif', caption: 'c'.repeat(1025) } })).toEqual([
      'media.link: a image of type .gif is not supported on whatsapp (allowed: jpg, jpeg, png)',
      'media.caption: caption is 1025 characters; the limit is 1024',
    ]);
    expect(paths({ kind: 'media', media: { type: 'audio', link: 'https://x.example/a.mp3', caption: 'hi', filename: 'a.mp3' } })).toEqual(['media.caption: audio has no caption', 'media.filename: a filename is for documents only']);
    expect(paths({ kind: 'media', media: { type: 'document', link: 'https://x.example/a.pdf', id: '1' } })).toEqual(['media: give exactly one of link, id, libraryId']);
    // a link without an extension is fine (Meta checks the bytes' type)
    expect(paths({ kind: 'media', media: { type: 'document', link: 'https://x.example/download?id=7' } })).toEqual([]);
    // Instagram: images by link only, png/jpeg/gif
    expect(paths({ kind: 'media', media: { type: 'image', id: '12' } }, 'instagram')).toEqual(['media.id: a Meta media id can only be sent on WhatsApp; give a link on instagram']);
    expect(paths({ kind: 'media', media: { type: 'image', link: 'https://x.example/a.gif' } }, 'instagram')).toEqual([]);
    // the media library's check of a file
    expect(mediaFileProblem('image', { mimeType: 'image/png', bytes: 5 * 1024 * 1024 })).toBeUndefined();
    expect(mediaFileProblem('image', { mimeType: 'image/png', bytes: 5 * 1024 * 1024 + 1 })).toMatch(/over Meta's limit of 5242880 bytes/);
    expect(mediaFileProblem('document', { mimeType: 'application/zip', bytes: 10 })).toMatch(/not supported/);
  });

  test('location and reaction', () => {
    expect(paths({ kind: 'location', location: { latitude: 91, longitude: -181 } })).toEqual(['location.latitude: latitude must be between -90 and 90', 'location.longitude: longitude must be between -180 and 180']);
    expect(paths({ kind: 'reaction', reaction: { messageId: '', emoji: '' } })).toEqual(['reaction.messageId: messageId is required', 'reaction.emoji: emoji is required']);
  });

  test('Instagram quick replies: at most 13, title 20, text 1000 bytes; cards: at most 10, title and subtitle 80, 3 buttons', () => {
    const qr: RichMessage = { kind: 'interactive', interactive: { type: 'quick_replies', text: 'é'.repeat(501), replies: Array.from({ length: 14 }, (_, n) => ({ title: n === 0 ? 't'.repeat(21) : `o${n}`, payload: `p${n}` })) } };
    expect(paths(qr, 'instagram')).toEqual([
      'interactive.text: text is 1002 bytes; the limit is 1000 bytes of UTF-8',
      'interactive.replies: 14 quick replies; allowed 1 to 13',
      'interactive.replies.0.title: quick reply title is 21 characters; the limit is 20',
    ]);
    const many: RichMessage = {
      kind: 'interactive',
      interactive: {
        type: 'generic',
        cards: Array.from({ length: 11 }, (_, n) => ({
          title: n === 0 ? 't'.repeat(81) : `c${n}`,
          ...(n === 0 ? { subtitle: 's'.repeat(81), buttons: Array.from({ length: 4 }, (_, k) => ({ type: 'postback' as const, title: `b${k}`, payload: `p${k}` })) } : {}),
        })),
      },
    };
    expect(paths(many, 'instagram')).toEqual([
      'interactive.cards: 11 cards; allowed 1 to 10',
      'interactive.cards.0.title: card title is 81 characters; the limit is 80',
      'interactive.cards.0.subtitle: card subtitle is 81 characters; the limit is 80',
      'interactive.cards.0.buttons: 4 card buttons; allowed 0 to 3',
    ]);
  });
});

describe('channelForm (what the workflow sends and records)', () => {
  it('keeps a native message with its text rendering', () => {
    expect(channelForm(buttons, 'whatsapp')).toEqual({ text: richText(buttons), rich: buttons });
  });
  it('gives text alone when the channel lacks the kind', () => {
    expect(channelForm(buttons, 'instagram')).toEqual({ text: 'Delivery\nWhen should we deliver?\n1. Tuesday\n2. Wednesday\nReply any time' });
    expect(channelForm(buttons, 'instagram').rich).toBeUndefined();
  });
  it('sends a converted message with the converted text', () => {
    const out = channelForm(quickReplies, 'whatsapp');
    expect(out.rich).toMatchObject({ kind: 'interactive', interactive: { type: 'button' } });
    expect(out.text).toBe(richText(out.rich!));
  });
});

describe('degrade', () => {
  test('native forms go out unchanged', () => {
    for (const m of [buttons, list, cta, image, pdf, audio, location, reaction]) expect(degrade(m, 'whatsapp')).toEqual({ kind: 'rich', message: m });
    for (const m of [quickReplies, cards, image]) expect(degrade(m, 'instagram')).toEqual({ kind: 'rich', message: m });
    for (const m of [buttons, list, image]) expect(degrade(m, 'webchat')).toEqual({ kind: 'rich', message: m });
  });

  test('reply buttons become quick replies on Instagram (when they have no header or footer)', () => {
    const plain: RichMessage = { kind: 'interactive', interactive: { type: 'button', body: 'Deliver when?', buttons: [{ id: 'tue', title: 'Tuesday' }, { id: 'wed', title: 'Wednesday' }] } };
    expect(degrade(plain, 'instagram')).toEqual({
      kind: 'rich',
      convertedFrom: 'interactive:button',
      message: { kind: 'interactive', interactive: { type: 'quick_replies', text: 'Deliver when?', replies: [{ title: 'Tuesday', payload: 'tue' }, { title: 'Wednesday', payload: 'wed' }] } },
    });
    // a body over Instagram's 1,000 bytes: text (cut by the send), so a WhatsApp-sized step still fits every channel
    const long: RichMessage = { kind: 'interactive', interactive: { type: 'button', body: 'é'.repeat(600), buttons: [{ id: 'a', title: 'A' }] } };
    expect(degrade(long, 'instagram')).toMatchObject({ kind: 'text', degradedFrom: 'interactive:button' });
    expect(channelProblems(long, 'instagram')).toEqual([]);
    // with a header and footer they are numbered options in text
    expect(degrade(buttons, 'instagram')).toEqual({ kind: 'text', degradedFrom: 'interactive:button', text: 'Delivery\nWhen should we deliver?\n1. Tuesday\n2. Wednesday\nReply any time' });
  });

  test('quick replies become reply buttons (≤ 3) or a list (≤ 10) on WhatsApp, buttons on web chat', () => {
    expect(degrade(quickReplies, 'whatsapp')).toEqual({
      kind: 'rich',
      convertedFrom: 'interactive:quick_replies',
      message: { kind: 'interactive', interactive: { type: 'button', body: 'Which size?', buttons: [{ id: 'S', title: 'Small' }, { id: 'L', title: 'Large' }] } },
    });
    const five: RichMessage = { kind: 'interactive', interactive: { type: 'quick_replies', text: 'Pick', replies: ['a', 'b', 'c', 'd', 'e'].map((x) => ({ title: x.toUpperCase(), payload: x })) } };
    const out = degrade(five, 'whatsapp');
    expect(out).toMatchObject({ kind: 'rich', message: { interactive: { type: 'list', button: 'Options', sections: [{ rows: [{ id: 'a', title: 'A' }, { id: 'b' }, { id: 'c' }, { id: 'd' }, { id: 'e' }] }] } } });
    expect(degrade(five, 'webchat')).toMatchObject({ kind: 'rich', message: { interactive: { type: 'button' } } });
  });

  test('a short list becomes quick replies on Instagram', () => {
    expect(degrade(list, 'instagram')).toEqual({
      kind: 'rich',
      convertedFrom: 'interactive:list',
      message: {
        kind: 'interactive',
        interactive: { type: 'quick_replies', text: 'Our menu\nPick a plan\nPrices include tax', replies: [{ title: 'Basic', payload: 'm-basic' }, { title: 'Pro', payload: 'm-pro' }, { title: 'Pro yearly', payload: 'y-pro' }] },
      },
    });
  });

  test('everything else is text: numbered options, label: url, maps link, caption and link, the emoji', () => {
    expect(degrade(cta, 'webchat')).toEqual({ kind: 'text', degradedFrom: 'interactive:cta_url', text: 'Book your slot online\nBook now: https://shop.example/book?x=1' });
    expect(degrade(location, 'instagram')).toEqual({ kind: 'text', degradedFrom: 'location', text: 'Parley Store, FC Road, Pune\nhttps://maps.google.com/?q=18.5204,73.8567' });
    expect(degrade(pdf, 'webchat')).toEqual({ kind: 'text', degradedFrom: 'media:document', text: 'Price list' });
    expect(degrade(audio, 'instagram')).toEqual({ kind: 'text', degradedFrom: 'media:audio', text: '[audio]\nhttps://cdn.example/hello.ogg' });
    expect(degrade(reaction, 'webchat')).toEqual({ kind: 'text', degradedFrom: 'reaction', text: '👍' });
    expect(degrade(cards, 'whatsapp')).toEqual({
      kind: 'text',
      degradedFrom: 'interactive:generic',
      text: '1. Red hat\nWool, one size\nhttps://shop.example/red\nView: https://shop.example/red\n- Buy\n\n2. Blue hat',
    });
    // an image by Meta media id cannot be shown off WhatsApp
    expect(degrade({ kind: 'media', media: { type: 'image', id: '5', caption: 'Box' } }, 'webchat')).toEqual({ kind: 'text', degradedFrom: 'media:image', text: 'Box' });
    expect(degrade(list, 'webchat')).toEqual({ kind: 'rich', message: list });
    expect(richText(list)).toBe('Our menu\nPick a plan\nMonthly\n1. Basic — ₹499 a month\n2. Pro\nYearly\n3. Pro yearly — ₹4,999 a year\nPrices include tax');
  });

  test('channelProblems checks what goes out on the channel', () => {
    const four: RichMessage = { kind: 'interactive', interactive: { type: 'button', body: 'b', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ id: x, title: x })) } };
    expect(channelProblems(four, 'whatsapp')).toEqual([{ path: 'interactive.buttons', message: '4 buttons; allowed 1 to 3' }]);
    expect(channelProblems(four, 'instagram')).toEqual([]); // four quick replies
    const longTitle: RichMessage = { kind: 'interactive', interactive: { type: 'button', body: 'b', buttons: [{ id: 'a', title: 't'.repeat(21) }] } };
    expect(channelProblems(longTitle, 'instagram')).toEqual([{ path: 'interactive.replies.0.title', message: 'quick reply title is 21 characters; the limit is 20 (sent as interactive:quick_replies on instagram)' }]);
    expect(channelProblems(cards, 'webchat')).toEqual([]); // text
  });

  test('transcript bodies', () => {
    expect(richTranscript(reaction)).toBe('[reaction 👍 to wamid.HBgLMTIzNDU2Nzg5MBUCABIYFjNFQjA=]');
    expect(richTranscript(audio)).toBe('[audio] https://cdn.example/hello.ogg');
    expect(richTranscript(image)).toBe('Your box\nhttps://cdn.example/p/box.png');
  });
});

describe('the fake Graph API checks the payloads as Meta does', () => {
  const wa = (m: RichMessage) => validateGraphMessageBody({ messaging_product: 'whatsapp', recipient_type: 'individual', to: '15551234567', ...whatsAppRichPayload(m) });
  const ig = (m: RichMessage) => validateInstagramMessageBody({ recipient: { id: '1234567890' }, messaging_type: 'RESPONSE', message: instagramRichPayload(m) });

  test('every builder output is accepted', () => {
    for (const m of [buttons, list, cta, image, pdf, audio, location, reaction]) expect(wa(m)).toBeNull();
    for (const m of [quickReplies, cards, image]) expect(ig(m)).toBeNull();
  });

  test('a message past a limit is refused by the fake too (what richProblems catches first)', () => {
    const four: RichMessage = { kind: 'interactive', interactive: { type: 'button', body: 'b', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ id: x, title: x })) } };
    expect(wa(four)).toMatch(/1 to 3 buttons/);
    const rows = Array.from({ length: 11 }, (_, n) => ({ id: `r${n}`, title: `Row ${n}` }));
    expect(wa({ kind: 'interactive', interactive: { type: 'list', body: 'b', button: 'Open', sections: [{ title: 'A', rows: rows.slice(0, 5) }, { title: 'B', rows: rows.slice(5) }] } })).toMatch(/at most 10 rows/);
    expect(wa({ kind: 'interactive', interactive: { type: 'cta_url', body: 'b', displayText: 'd'.repeat(21), url: 'https://x.example' } })).toMatch(/display_text/);
    expect(ig({ kind: 'interactive', interactive: { type: 'quick_replies', text: 't', replies: Array.from({ length: 14 }, (_, n) => ({ title: `o${n}`, payload: `p${n}` })) } })).toMatch(/1 to 13 quick replies/);
    expect(ig({ kind: 'interactive', interactive: { type: 'generic', cards: [{ title: 't'.repeat(81) }] } })).toMatch(/1 to 80 characters/);
  });
});

describe('web chat rendering and the API edge schemas', () => {
  test('the widget gets options and images', () => {
    expect(webChatRich(list)).toEqual({
      type: 'list',
      header: 'Our menu',
      body: 'Pick a plan',
      footer: 'Prices include tax',
      button: 'See plans',
      options: [
        { id: 'm-basic', title: 'Basic', description: '₹499 a month', section: 'Monthly' },
        { id: 'm-pro', title: 'Pro', section: 'Monthly' },
        { id: 'y-pro', title: 'Pro yearly', description: '₹4,999 a year', section: 'Yearly' },
      ],
    });
    expect(webChatRich(image)).toEqual({ type: 'image', imageUrl: 'https://cdn.example/p/box.png', caption: 'Your box' });
    expect(webChatRich(location)).toBeUndefined();
  });

  test('the zod schema takes every example; a sequence step is checked for every channel', () => {
    for (const m of [buttons, list, cta, quickReplies, cards, image, pdf, audio, location, reaction]) expect(richMessageSchema.safeParse(m).success).toBe(true);
    expect(richMessageSchema.safeParse({ kind: 'media', media: { type: 'image', link: 'https://x.example/a.png', id: '1' } }).success).toBe(false);
    expect(sequenceStepSchema.safeParse({ delayMs: 0, kind: 'rich', message: buttons }).success).toBe(true);
    const r = sequenceStepSchema.safeParse({ delayMs: 0, kind: 'rich', message: { kind: 'interactive', interactive: { type: 'button', body: 'b', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ id: x, title: x })) } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message)).toEqual(['whatsapp: 4 buttons; allowed 1 to 3']);
    expect(sequenceStepSchema.safeParse({ delayMs: 0, kind: 'rich' }).success).toBe(false);
  });
});
