/**
 * A frozen copy of the project's sources for the worker processes of one chaos run.
 *
 * Every worker incarnation bundles the workflow code when it starts. Run from the working
 * tree, a worker restarted after a kill would load whatever the files say at that moment, so
 * an edit made during the run (a new `patched()` call, a reordered activity) would show up as
 * non-determinism in histories recorded by the previous incarnation. A real deployment
 * restarts the same build; so does the chaos run: all its workers run this snapshot.
 */
import { cpSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';

const SKIP = new Set(['node_modules', '.git', '.tools', '.data', 'dist', 'coverage', 'test']);

/** Copy the sources under `dir` (node_modules linked, not copied); returns the snapshot's root. */
export function snapshotSources(projectRoot: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  cpSync(projectRoot, dir, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(projectRoot, src);
      if (rel === '') return true;
      const top = rel.split(path.sep)[0]!;
      return !SKIP.has(top) && !rel.startsWith(path.join('bench', 'results'));
    },
  });
  symlinkSync(path.join(projectRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}
