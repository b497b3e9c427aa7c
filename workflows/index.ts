// What the worker bundles.
export { leadConversation } from './lead/workflow';
export { fetchMediaWorkflow } from './media';
export { resumeCircuitWaitersWorkflow } from './circuit';
export { creditSweepWorkflow } from './credit-sweep';
export { closeChannelLeadsWorkflow } from './channel-delete';
export { webhookDeliveryWorkflow } from './webhook-delivery';
export { knowledgeDocumentWorkflow } from './knowledge';
