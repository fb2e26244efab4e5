// Previous/next case on the reader's worklist.

import { api } from '../api.js';

/** @returns {Promise<{prev: number|null, next: number|null, index: number, total: number}>} */
export async function worklistNeighbours(caseId) {
  const items = await api('/api/worklist');
  const ids = items.map((item) => item.case.id);
  const index = ids.indexOf(caseId);
  if (index < 0) return { prev: null, next: ids[0] ?? null, index, total: ids.length, items };
  return {
    prev: index > 0 ? ids[index - 1] : null,
    next: index < ids.length - 1 ? ids[index + 1] : null,
    index,
    total: ids.length,
    items,
  };
}

export function readUrl(caseId) {
  return `/read/${caseId}`;
}
