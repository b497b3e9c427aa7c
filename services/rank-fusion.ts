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
export function reciprocalRankFusion(lists: string[][], k = RRF_K, weights: number[] = []): FusedItem[] {
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
      item.fused += (weights[li] ?? 1) / (k + i + 1);
    });
  });
  const best = (x: FusedItem) => Math.min(...x.ranks.map((r) => r ?? Infinity));
  return [...byId.values()].sort((a, b) => b.fused - a.fused || best(a) - best(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Score fusion: each list's scores divided by its best score (so each list's top item weighs 1),
 * weighted and summed; an item a list lacks gets 0 from it. Unlike RRF it keeps how far apart
 * a list's scores are: a full-text top hit far ahead of the rest stays ahead. Ties as RRF.
 */
export function normalizedScoreFusion(lists: { id: string; score: number }[][], weights: number[] = []): FusedItem[] {
  const byId = new Map<string, FusedItem>();
  lists.forEach((list, li) => {
    const top = Math.max(0, ...list.map((r) => r.score));
    const seen = new Set<string>();
    list.forEach((r, i) => {
      if (seen.has(r.id)) return;
      seen.add(r.id);
      let item = byId.get(r.id);
      if (!item) {
        item = { id: r.id, fused: 0, ranks: lists.map(() => null) };
        byId.set(r.id, item);
      }
      item.ranks[li] = i + 1;
      item.fused += top > 0 ? ((weights[li] ?? 1) * Math.max(0, r.score)) / top : 0;
    });
  });
  const best = (x: FusedItem) => Math.min(...x.ranks.map((r) => r ?? Infinity));
  return [...byId.values()].sort((a, b) => b.fused - a.fused || best(a) - best(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
