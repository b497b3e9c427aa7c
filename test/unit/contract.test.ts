/**
 * contract/ is the one place failure types and the shared vocabulary are spelled: these tests
 * keep the wire values fixed, keep the retry lists inside the contract, keep contract/
 * workflow-safe, and fail when someone types a failure type by hand anywhere in the product code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ts from 'typescript';
import {
  CHANNEL_FAILURES,
  CIRCUIT_WAIT_FAILURES,
  DATABASE_FAILURES,
  DELIVERY_NON_RETRYABLE,
  EXTRACTION_NON_RETRYABLE,
  FAILURE_TYPES,
  FailureType,
  failureIn,
  isFailureType,
  LLM_FAILURES,
  LLM_NON_RETRYABLE,
  MEDIA_FAILURES,
  MEDIA_NON_RETRYABLE,
  KNOWLEDGE_NON_RETRYABLE,
  PERMANENT_SEND_FAILURES,
  PROVIDER_FAILURES,
  TEMPLATE_FAILURES,
  LeadMessage,
} from '../../contract';
import * as definitions from '../../workflows/lead/definitions';

const ROOT = join(__dirname, '../..');
/** Product code: everything that ships, minus contract/ itself. */
const PRODUCT_DIRS = ['activities', 'api', 'config', 'db', 'lib', 'services', 'temporal', 'workers', 'workflows'];
/**
 * Files not yet moved to the contract. workflows/lead/workflow.ts is being split into modules
 * (issue 9); the split imports the contract's lists. Delete the entry when it lands.
 */
const PENDING = new Set<string>();

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function parse(path: string, text = readFileSync(path, 'utf8')): ts.SourceFile {
  return ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, true);
}

/** `new AppError(...)`: the API's error codes (lib/errors.ts) are another taxonomy; some share a word. */
function insideAppError(node: ts.Node): boolean {
  for (let n: ts.Node | undefined = node.parent; n; n = n.parent) {
    if (ts.isNewExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'AppError') return true;
  }
  return false;
}

/** Every string literal in `file` that spells a failure type, outside `new AppError(...)`. */
function handTypedFailureTypes(file: string, text?: string): string[] {
  const sf = parse(file, text);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && isFailureType(node.text) && !insideAppError(node)) {
      // a property name ('x': ...) or an import path is not a value
      const parent = node.parent;
      const isKey = ts.isPropertyAssignment(parent) && parent.name === node;
      if (!isKey && !ts.isImportDeclaration(parent)) {
        const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
        found.push(`${relative(ROOT, file)}:${line + 1} '${node.text}'`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The `type` of every `ApplicationFailure.create({ type })` that is not taken from the contract. */
function literalCreateTypes(file: string, text?: string): string[] {
  const sf = parse(file, text);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      (node.expression.name.text === 'retryable' || node.expression.name.text === 'nonRetryable') &&
      ts.isIdentifier(node.expression.expression) &&
      node.expression.expression.text === 'ApplicationFailure'
    ) {
      // ApplicationFailure.retryable(message, type) / nonRetryable(message, type)
      const type = node.arguments[1];
      if (type && (ts.isStringLiteral(type) || ts.isTemplateExpression(type) || ts.isNoSubstitutionTemplateLiteral(type))) {
        const { line } = sf.getLineAndCharacterOfPosition(type.getStart(sf));
        found.push(`${relative(ROOT, file)}:${line + 1} ${type.getText(sf)}`);
      }
    }
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.name.text === 'create' &&
      ts.isIdentifier(node.expression.expression) &&
      node.expression.expression.text === 'ApplicationFailure'
    ) {
      const arg = node.arguments[0];
      const typeProp = arg && ts.isObjectLiteralExpression(arg) ? arg.properties.find((p) => p.name && ts.isIdentifier(p.name) && p.name.text === 'type') : undefined;
      if (typeProp && ts.isPropertyAssignment(typeProp) && (ts.isStringLiteral(typeProp.initializer) || ts.isTemplateExpression(typeProp.initializer) || ts.isNoSubstitutionTemplateLiteral(typeProp.initializer))) {
        const { line } = sf.getLineAndCharacterOfPosition(typeProp.getStart(sf));
        found.push(`${relative(ROOT, file)}:${line + 1} ${typeProp.initializer.getText(sf)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

const productFiles = PRODUCT_DIRS.flatMap((d) => tsFiles(join(ROOT, d))).filter((f) => !PENDING.has(relative(ROOT, f)));

describe('failure types', () => {
  test('the wire values are exactly the ones histories, dead letters and tests hold', () => {
    expect(FailureType).toEqual({
      ProviderRateLimited: 'provider_rate_limited',
      ProviderTransient: 'provider_transient',
      ProviderPermanent: 'provider_permanent',
      ProviderReengagement: 'provider_reengagement',
      ProviderSpamLimited: 'provider_spam_limited',
      ProviderAuth: 'provider_auth',
      ProviderUnconfirmed: 'provider_unconfirmed',
      ChannelNotFound: 'channel_not_found',
      ChannelCircuitOpen: 'channel_circuit_open',
      ChannelDisabled: 'channel_disabled',
      ChannelDeleted: 'channel_deleted',
      ChannelNotMarkedDeleted: 'channel_not_marked_deleted',
      TenantSuspended: 'tenant_suspended',
      TemplateNotFound: 'template_not_found',
      TemplateNotApproved: 'template_not_approved',
      TemplateVariables: 'template_variables',
      LlmConfig: 'llm_config',
      LlmTransient: 'llm_transient',
      LlmBudgetExceeded: 'llm_budget_exceeded',
      MediaTooLarge: 'media_too_large',
      MediaChecksumMismatch: 'media_checksum_mismatch',
      MediaInvalidId: 'media_invalid_id',
      MediaNotFound: 'media_not_found',
      MediaUrlNotConfigured: 'media_url_not_configured',
      MediaKindMismatch: 'media_kind_mismatch',
      DatabaseRejected: 'database_rejected',
      DatabaseUnavailable: 'database_unavailable',
      ExtractionInvalid: 'extraction_invalid',
      LeadNotFound: 'lead_not_found',
      AgentNotFound: 'agent_not_found',
      InvalidTransition: 'invalid_transition',
      LeadMissing: 'lead_missing',
      NotImplemented: 'not_implemented',
      InvalidInput: 'invalid_input',
      Configuration: 'configuration',
      WebhookRejected: 'webhook_rejected',
      WebhookTransient: 'webhook_transient',
      WebhookUrlRefused: 'webhook_url_refused',
      WebhookEndpointGone: 'webhook_endpoint_gone',
      KnowledgeDocumentRejected: 'knowledge_document_rejected',
      KnowledgeParseLimit: 'knowledge_parse_limit',
    });
    expect(new Set(FAILURE_TYPES).size).toBe(FAILURE_TYPES.length);
    expect(Object.isFrozen(FAILURE_TYPES)).toBe(true);
  });

  test.each([
    ['provider_', PROVIDER_FAILURES],
    ['channel_', CHANNEL_FAILURES],
    ['template_', TEMPLATE_FAILURES],
    ['llm_', LLM_FAILURES],
    ['media_', MEDIA_FAILURES],
    ['database_', DATABASE_FAILURES],
  ])('the %s group holds every type with that prefix and no other', (prefix, group) => {
    expect([...group].sort()).toEqual(FAILURE_TYPES.filter((t) => t.startsWith(prefix)).sort());
  });

  test('every retry list is made of contract types, without repeats', () => {
    const lists = { DELIVERY_NON_RETRYABLE, LLM_NON_RETRYABLE, EXTRACTION_NON_RETRYABLE, MEDIA_NON_RETRYABLE, KNOWLEDGE_NON_RETRYABLE, CIRCUIT_WAIT_FAILURES, PERMANENT_SEND_FAILURES: [...PERMANENT_SEND_FAILURES] };
    for (const [name, list] of Object.entries(lists)) {
      expect({ name, unknown: list.filter((t) => !isFailureType(t)) }).toEqual({ name, unknown: [] });
      expect({ name, size: new Set(list).size }).toEqual({ name, size: list.length });
    }
  });

  test('a permanent send failure is never retried, and retryable provider failures are', () => {
    for (const t of PERMANENT_SEND_FAILURES) expect(DELIVERY_NON_RETRYABLE).toContain(t);
    for (const t of [FailureType.ProviderRateLimited, FailureType.ProviderTransient, FailureType.ProviderUnconfirmed, FailureType.DatabaseUnavailable]) {
      expect(DELIVERY_NON_RETRYABLE).not.toContain(t);
    }
    for (const t of CIRCUIT_WAIT_FAILURES) expect(DELIVERY_NON_RETRYABLE).toContain(t);
    expect(LLM_NON_RETRYABLE).not.toContain(FailureType.LlmTransient);
    expect(EXTRACTION_NON_RETRYABLE).not.toContain(FailureType.ExtractionInvalid);
    expect(MEDIA_NON_RETRYABLE).not.toContain(FailureType.MediaChecksumMismatch);
  });

  test('failureIn and isFailureType accept wire strings and reject the rest', () => {
    expect(failureIn(CIRCUIT_WAIT_FAILURES, 'provider_auth')).toBe(true);
    expect(failureIn(CIRCUIT_WAIT_FAILURES, 'provider_transient')).toBe(false);
    expect(failureIn(CIRCUIT_WAIT_FAILURES, undefined)).toBe(false);
    expect(failureIn(CIRCUIT_WAIT_FAILURES, null)).toBe(false);
    expect(isFailureType('llm_config')).toBe(true);
    expect(isFailureType('LlmConfig')).toBe(false);
    expect(isFailureType(42)).toBe(false);
  });
});

describe('no failure type is typed by hand', () => {
  test('the scanners catch hand-typed types and let contract uses and AppError codes pass', () => {
    expect(productFiles.length).toBeGreaterThan(50);
    const bad = [
      "throw ApplicationFailure.create({ type: 'provider_auth', message: 'x' });",
      'throw ApplicationFailure.create({ type: `llm_${kind}`, message: "x" });',
      "const retry = { nonRetryableErrorTypes: ['media_too_large'] };",
      "if (err.type === 'channel_circuit_open') wait();",
      "switch (type) { case 'database_rejected': break; }",
      "type Refusal = { reason: 'channel_not_found' };",
      "throw ApplicationFailure.retryable('not yet', 'some_new_type');",
      "throw ApplicationFailure.nonRetryable('bad', `x_${y}`);",
    ].join('\n');
    expect(literalCreateTypes(join(ROOT, 'probe.ts'), bad)).toHaveLength(4);
    expect(handTypedFailureTypes(join(ROOT, 'probe.ts'), bad)).toHaveLength(5);
    const good = [
      "import { FailureType } from './contract';",
      'throw ApplicationFailure.create({ type: FailureType.ProviderAuth, message: "x" });',
      "throw ApplicationFailure.retryable('not yet', FailureType.ChannelNotMarkedDeleted);",
      'const retry = { nonRetryableErrorTypes: [...MEDIA_NON_RETRYABLE] };',
      "throw new AppError('provider_auth', 'refused', undefined, 'media_too_large');",
      "const codes = { 'llm_config': 1 };",
      "const event = 'extraction_failed';",
    ].join('\n');
    expect(literalCreateTypes(join(ROOT, 'probe.ts'), good)).toEqual([]);
    expect(handTypedFailureTypes(join(ROOT, 'probe.ts'), good)).toEqual([]);
  });

  test('every ApplicationFailure.create, .retryable and .nonRetryable takes its type from the contract', () => {
    expect(productFiles.flatMap((f) => literalCreateTypes(f))).toEqual([]);
  });

  test('no product file spells a failure type as a string (outside new AppError(...))', () => {
    expect(productFiles.flatMap((f) => handTypedFailureTypes(f))).toEqual([]);
  });
});

describe('contract/ is workflow-safe', () => {
  const files = tsFiles(join(ROOT, 'contract'));

  test.each(files.map((f) => relative(ROOT, f)))('%s imports only contract/ files', (file) => {
    const sf = parse(join(ROOT, file));
    const specifiers = sf.statements.filter((s) => ts.isImportDeclaration(s) || ts.isExportDeclaration(s)).flatMap((s) => {
      const spec = (s as ts.ImportDeclaration | ts.ExportDeclaration).moduleSpecifier;
      return spec && ts.isStringLiteral(spec) ? [spec.text] : [];
    });
    for (const from of specifiers) expect(from).toMatch(/^\.\/[a-z-]+$/);
    expect(sf.text).not.toMatch(/\brequire\(|\bprocess\.|\bBuffer\b|\bDate\.now\(|Math\.random/);
  });
});

describe('activities and services do not import workflow code', () => {
  test.each(['activities', 'services'])('%s/ imports nothing from workflows/', (dir) => {
    const offenders = tsFiles(join(ROOT, dir)).flatMap((file) => {
      const sf = parse(file);
      return sf.statements
        .filter(ts.isImportDeclaration)
        .map((s) => (s.moduleSpecifier as ts.StringLiteral).text)
        .filter((from) => /(^|\/)workflows(\/|$)/.test(from))
        .map((from) => `${relative(ROOT, file)} -> ${from}`);
    });
    expect(offenders).toEqual([]);
  });
});

describe('lead workflow message names', () => {
  test('every signal, update and query of the lead workflow is named by the contract, and every contract name is defined', () => {
    const defined = Object.values(definitions as Record<string, unknown>)
      .filter((v): v is { type: string; name: string } => typeof v === 'object' && v !== null && 'type' in v && 'name' in v && ['signal', 'update', 'query'].includes((v as { type: string }).type))
      .map((d) => d.name)
      .sort();
    expect(defined).toEqual(Object.values(LeadMessage).sort());
    // the circuit activity signals by name (it may not import workflow code)
    expect(definitions.circuitClosedSignal.name).toBe(LeadMessage.circuitClosed);
  });
});
