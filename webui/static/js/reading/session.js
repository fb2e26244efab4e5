// Open a reading session for a case, or resume this reader's open one (after a reload).

import { api } from '../api.js';

export function displayInfo() {
  return {
    screen_w: window.screen.width,
    screen_h: window.screen.height,
    dpr: window.devicePixelRatio || 1,
    viewport_w: window.innerWidth,
    viewport_h: window.innerHeight,
  };
}

/**
 * The reader's open session on this case with the same source kind, or a new one.
 * @returns {Promise<{session: object, created: boolean}>}
 */
export async function openOrResume(caseId, userId, source) {
  const params = new URLSearchParams({ case_id: caseId, reader_id: userId, status: 'open' });
  const open = await api(`/api/sessions?${params}`);
  const items = Array.isArray(open) ? open : open.items || [];
  const mine = items
    .filter((s) => s.reader_id === userId && s.status === 'open' && s.source === source.kind)
    .sort((a, b) => b.id - a.id);
  if (mine.length) return { session: mine[0], created: false };
  const session = await api('/api/sessions', {
    method: 'POST',
    json: { case_id: caseId, source: source.kind, source_info: source.info(), display_info: displayInfo() },
  });
  return { session, created: true };
}
