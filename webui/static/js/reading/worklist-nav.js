// Previous/next case on the reader's worklist.

import { api } from '../api.js';
import { nextUnread } from '../worklist/model.js';

/**
 * @returns {Promise<{prev: number|null, next: number|null, nextUnread: number|null, index: number,
 *   total: number, items: object[]}>}  nextUnread: the next case still to read after this one
 */
export async function worklistNeighbours(caseId) {
  const items = await api('/api/worklist');
  const ids = items.map((item) => item.case.id);
  const index = ids.indexOf(caseId);
  const unread = nextUnread(items, index < 0 ? null : caseId);
  if (index < 0) return { prev: null, next: ids[0] ?? null, nextUnread: unread, index, total: ids.length, items };
  return {
    nextUnread: unread,
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
