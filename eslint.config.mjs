// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', '.tools/', 'coverage/', 'bench/results/', 'db/migrations/', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    // Workflow code is replayed: deterministic imports only (contract/ is workflow-safe and allowed).
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'workflow code must not import Node built-ins' },
            { group: ['**/activities/**', '**/activities'], allowTypeImports: true, message: 'workflows import activity types only (import type)' },
            { group: ['**/db/**', '**/api/**', '**/services/**', '**/temporal/**', '**/lib/**', '**/workers/**', '**/composition/**', '**/config/**'], message: 'workflow code must stay deterministic: no I/O modules' },
            { group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity', 'fs', 'path', 'crypto', 'http', 'https', 'net', 'os', 'child_process', 'postgres', 'drizzle-orm', 'drizzle-orm/*', 'openai', 'express', 'pino', '@electric-sql/*'], message: 'not allowed in workflow code' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'use sleep() from @temporalio/workflow' }, { name: 'setInterval', message: 'use sleep() in a loop' }],
    },
  },
  {
    // The contract is shared by workflow code and everything else: it imports only itself.
    files: ['contract/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^(?!\\./[a-z0-9-]+$)', message: 'contract/ is workflow-safe: import only other contract/ files' }] }],
    },
  },
  {
    // Activities and services are used by the worker and the API: shared types and failure types
    // come from contract/, never from workflow code.
    files: ['activities/**/*.ts', 'services/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/workflows/**', '**/workflows'], message: 'import shared types, names and failure types from contract/, not from workflows/' }] },
      ],
    },
  },
  {
    // The API is its own process: it shares the composition root (composition/core), never the worker's wiring.
    files: ['api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/workers/**', '**/workers'], message: 'api/ must not import workers/: shared wiring lives in composition/core' },
            { group: ['**/composition/worker'], message: 'the worker alone builds activity deps and lead settings (LEAD_*): the API uses composition/core' },
          ],
        },
      ],
    },
  },
  {
    files: ['workflows/**/policy/**/*.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'policies are pure: take randomness as an input' }],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'policies are pure: take now as an input' },
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'policies are pure: take now as an input' },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
