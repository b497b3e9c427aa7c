/**
 * Modules the worker evaluates once, in its shared workflow V8 context, instead of once per
 * cached workflow (`bundlerOptions.preloadModules`, see WORKFLOW_PRELOAD_MODULES).
 *
 * With reuseV8Context (the SDK's default) every workflow gets its own webpack module cache, so each
 * cached lead evaluated zod anew: ~0.6 MB of heap per cached workflow, four fifths of what the
 * bundle's modules cost one workflow (bench/workflow-memory.ts: 777 KB per workflow, 153 KB with
 * zod preloaded). zod is stateless for our use (schemas are built by the workflow modules, which
 * stay per workflow), so sharing it cannot leak one lead's state into another.
 *
 * The SDK deep-freezes preloaded modules, and zod fills two defaults of its global config lazily
 * (the English error map and the memoizer, on the first schema and the first container schema): a
 * frozen config would make those writes throw inside a workflow. Building one container schema here
 * fills both before the freeze.
 */
import { z } from 'zod';

z.object({ preload: z.array(z.string()) }).safeParse({ preload: ['zod'] });
