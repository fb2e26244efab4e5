// Worklist state without DOM: filter, search, sort, counts and "next unread" over GET /api/worklist items.

export const STATUSES = ['unread', 'in_progress', 'read', 'skipped'];
export const STATUS_LABEL = { unread: 'Unread', in_progress: 'In progress', read: 'Read', skipped: 'Skipped' };
const STATUS_ORDER = { in_progress: 0, unread: 1, skipped: 2, read: 3 };

export const SORTS = {
  priority: (a, b) => a.priority - b.priority || a.case.id - b.case.id,
  title: (a, b) => caseTitle(a).localeCompare(caseTitle(b), undefined, { numeric: true }) || a.case.id - b.case.id,
  status: (a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || SORTS.priority(a, b),
  last_read: (a, b) => (b.last_read_at || '').localeCompare(a.last_read_at || '') || SORTS.priority(a, b),
};

export function caseTitle(item) {
  return item.case.title || `Case ${item.case.id}`;
}

/** Items per status, every status present. */
export function countByStatus(items) {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const item of items) counts[item.status] += 1;
  return counts;
}

/**
 * Items shown for a filter: `status` ('all' or one status), `query` (matched against title, dataset
 * and label), `sort` (a key of SORTS); never mutates `items`.
 */
export function visibleItems(items, { status = 'all', query = '', sort = 'priority' } = {}) {
  const q = query.trim().toLowerCase();
  return items
    .filter((item) => status === 'all' || item.status === status)
    .filter((item) => !q || [caseTitle(item), item.case.dataset_name, item.label || '']
      .some((text) => String(text).toLowerCase().includes(q)))
    .sort(SORTS[sort] || SORTS.priority);
}

/**
 * The case to read next: the first case in progress, else the first unread one after `afterId`
 * in worklist order (wrapping around), else null.
 */
export function nextUnread(items, afterId = null) {
  const ordered = [...items].sort(SORTS.priority);
  const started = ordered.find((item) => item.status === 'in_progress' && item.case.id !== afterId);
  if (started) return started.case.id;
  const start = afterId === null ? 0 : ordered.findIndex((item) => item.case.id === afterId) + 1;
  const rotated = [...ordered.slice(start), ...ordered.slice(0, start)];
  const unread = rotated.find((item) => item.status === 'unread' && item.case.id !== afterId);
  return unread ? unread.case.id : null;
}
