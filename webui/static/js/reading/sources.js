// Which gaze source a reading uses: ?source=<kind> in the URL (tests, demos), else the reader's
// saved choice, else the mouse. Replay takes ?scanpath=<same-origin URL>[&coords=image|screen][&rate=1].

import '../gaze/mouse.js';
import '../gaze/replay.js';
import '../gaze/eye-sources.js';
import { createSource, sourceClass, sourceKinds } from '../gaze/source.js';
import { loadScanpath } from '../gaze/replay.js';

const PREF_KEY = 'mcgip.gazeSource';

/** Kinds a reader can pick for the next case (replay needs a scanpath URL, so only via the URL). */
export function selectableKinds() {
  return sourceKinds().filter((k) => k !== 'replay');
}

export function preferredKind() {
  const saved = window.localStorage.getItem(PREF_KEY);
  return saved && sourceKinds().includes(saved) ? saved : 'mouse';
}

export function savePreferredKind(kind) {
  window.localStorage.setItem(PREF_KEY, kind);
}

/**
 * Build the source for this page.
 * @param {URLSearchParams} params
 * @param {import('../viewer/image-viewer.js').ImageViewer} viewer
 */
export async function sourceFromPage(params, viewer) {
  const kind = params.get('source') || preferredKind();
  sourceClass(kind); // unknown kinds fail here with a clear message
  if (kind === 'replay') {
    const url = params.get('scanpath');
    if (!url) throw new Error('the replay source needs ?scanpath=<url>');
    const scanpath = await loadScanpath(url, params.get('coords') || 'image');
    const rate = Number(params.get('rate') || 1);
    return createSource('replay', {
      scanpath, url, rate: rate > 0 ? rate : 1, toScreen: (ix, iy) => viewer.imageToScreen(ix, iy),
    });
  }
  return createSource(kind, { viewer });
}
