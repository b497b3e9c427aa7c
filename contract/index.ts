/**
 * Parley's contract: the vocabulary, failure types, message shapes and workflow names that
 * the API, services, activities, workflows and db/schema.ts share. Workflow-safe (no imports
 * outside contract/, no Node APIs): see eslint.config.mjs.
 */
export * from './agent-tools';
export * from './failures';
export * from './messages';
export * from './rich';
export * from './vocabulary';
export * from './workflow-names';
