import { extractionJsonSchema, parseExtraction } from '../../activities/extraction/extract';
import { canonicalJson, csvCell, mergeAttributes, sameData, toCsv, type ExtractionData } from '../../services/extractions';

describe('CSV cells', () => {
  test('plain values stay plain', () => {
    expect(csvCell('Priya Sharma')).toBe('Priya Sharma');
    expect(csvCell(42)).toBe('42');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(Number.NaN)).toBe('');
  });

  test('commas, quotes and line breaks are quoted, quotes doubled', () => {
    expect(csvCell('Acme, Inc.')).toBe('"Acme, Inc."');
    expect(csvCell('the "pro" plan')).toBe('"the ""pro"" plan"');
    expect(csvCell('line one\nline two')).toBe('"line one\nline two"');
    expect(csvCell('a\r\nb')).toBe('"a\r\nb"');
    expect(csvCell({ industry: 'retail, online' })).toBe('"{""industry"":""retail, online""}"');
  });

  test('formula injection: = + - @ tab and CR at the start get a leading quote', () => {
    expect(csvCell('=HYPERLINK("http://evil","x")')).toBe(`"'=HYPERLINK(""http://evil"",""x"")"`);
    expect(csvCell('+91 98765')).toBe("'+91 98765");
    expect(csvCell('-2+3')).toBe("'-2+3");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\t=1')).toBe("'\t=1");
    expect(csvCell('\r=1')).toBe(`"'\r=1"`);
    expect(csvCell('a=b')).toBe('a=b');
    // numbers are data, not text: a negative score is not rewritten
    expect(csvCell(-5)).toBe('-5');
  });

  test('rows end with CRLF', () => {
    expect(toCsv([['a', 'b'], ['c,d', null]])).toBe('a,b\r\n"c,d",\r\n');
  });
});

describe('extraction data', () => {
  const data = (over: Partial<ExtractionData> = {}): ExtractionData => ({
    name: null,
    email: null,
    company: null,
    budget: null,
    authority: null,
    need: null,
    timeline: null,
    fields: {},
    ...over,
  });

  test('key order does not make data different', () => {
    expect(sameData({ a: 1, b: { c: 2, d: [1, { e: 1, f: 2 }] } }, { b: { d: [1, { f: 2, e: 1 }], c: 2 }, a: 1 })).toBe(true);
    expect(sameData({ a: 1 }, { a: 2 })).toBe(false);
    expect(sameData({ a: null }, {})).toBe(false);
    expect(canonicalJson({ b: 1, a: undefined })).toBe('{"b":1}');
  });

  test('merge keeps known values when the new extraction has nulls', () => {
    const merged = mergeAttributes({ email: 'p@acme.in', note: 'kept', fields: { industry: 'retail' } }, data({ name: 'Priya', fields: { industry: null, seats: '20' } }));
    expect(merged).toEqual({ email: 'p@acme.in', note: 'kept', name: 'Priya', fields: { industry: 'retail', seats: '20' } });
    expect(mergeAttributes({}, data())).toEqual({});
  });

  test('the JSON schema is what strict structured outputs accept', () => {
    const schema = extractionJsonSchema({ industry: 'Industry of the company' });
    expect(schema.$schema).toBeUndefined();
    expect(schema).toMatchObject({ type: 'object', additionalProperties: false });
    const props = schema.properties as Record<string, Record<string, unknown>>;
    expect(Object.keys(props).sort()).toEqual(['authority', 'budget', 'company', 'email', 'fields', 'name', 'need', 'summary', 'timeline']);
    expect((schema.required as string[]).sort()).toEqual(Object.keys(props).sort());
    expect(props.email!.type).toEqual(['string', 'null']);
    expect(props.fields).toMatchObject({ type: 'object', additionalProperties: false, required: ['industry'] });
    // without agent fields there is no (empty) fields object
    expect(Object.keys(extractionJsonSchema({}).properties as object)).not.toContain('fields');
    // every object in the schema is closed and fully required
    const walk = (s: Record<string, unknown>) => {
      if (s.type === 'object') {
        expect(s.additionalProperties).toBe(false);
        expect((s.required as string[]).sort()).toEqual(Object.keys(s.properties as object).sort());
        for (const v of Object.values(s.properties as Record<string, Record<string, unknown>>)) walk(v);
      }
    };
    walk(schema);
  });

  test('replies are validated and normalised', () => {
    const ok = parseExtraction(
      JSON.stringify({ name: ' Priya ', email: 'not an email', company: '', budget: '5L', authority: null, need: 'CRM', timeline: null, fields: { industry: 'retail' }, summary: ' Priya wants a CRM. ' }),
      { industry: 'x' },
    );
    expect(ok).toEqual({
      ok: true,
      data: { name: 'Priya', email: null, company: null, budget: '5L', authority: null, need: 'CRM', timeline: null, fields: { industry: 'retail' } },
      summary: 'Priya wants a CRM.',
    });
    expect(parseExtraction('{"name": "x"', {})).toMatchObject({ ok: false, reason: 'reply is not JSON' });
    expect(parseExtraction('', {})).toMatchObject({ ok: false });
    const missing = parseExtraction(JSON.stringify({ name: 'x', summary: 's' }), {});
    expect(missing.ok).toBe(false);
    expect(!missing.ok && missing.reason).toContain('email');
    expect(parseExtraction(JSON.stringify({ name: 1, email: null, company: null, budget: null, authority: null, need: null, timeline: null, summary: 's' }), {}).ok).toBe(false);
  });
});
