/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, 2009): each ranked list gives an item
 * 1 / (k + rank) (rank from 1), summed over the lists; k = 60 damps the weight of the first ranks
 * so that two lists that both place an item fairly high beat one list that places it first.
 * Pure (test/unit/knowledge-rrf.test.ts).
 */

export const RRF_K = 60;

export interface FusedItem {
  id: string;
  fused: number;
  /** 1-based rank in each list; null when the list does not hold the item. */
  ranks: (number | null)[];
}

/** Fuse ranked id lists (best first); ties broken by the best single rank, then by id (stable, deterministic). */
export function reciprocalRankFusion(lists: string[][], k = RRF_K): FusedItem[] {
  const byId = new Map<string, FusedItem>();
  lists.forEach((list, li) => {
    const seen = new Set<string>();
    list.forEach((id, i) => {
      if (seen.has(id)) return; // a repeated id counts at its best rank only
      seen.add(id);
      let item = byId.get(id);
      if (!item) {
        item = { id, fused: 0, ranks: lists.map(() => null) };
        byId.set(id, item);
      }
      item.ranks[li] = i + 1;
      item.fused += 1 / (k + i + 1);
    });
  });
  const best = (x: FusedItem) => Math.min(...x.ranks.map((r) => r ?? Infinity));
  return [...byId.values()].sort((a, b) => b.fused - a.fused || best(a) - best(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
