// Session review: scanpath replay over the image with speed control, and the session heatmap.

import { api, el } from '../api.js';
import { ImageViewer } from '../viewer/image-viewer.js';
import { scanpathOverlay } from '../viewer/overlays.js';
import { bindAnnotations, bindHeatmap } from './common.js';
import { Playback, recordedView, recordedWindow, sampleIndexAt, samplesToPath } from './playback.js';

const root = document.getElementById('review');
const sessionId = Number(root.dataset.sessionId);

function meta(session) {
  const rows = [
    ['Case', el('a', { href: `/review/cases/${session.case_id}` }, `case ${session.case_id}`)],
    ['Reader', session.reader_name || `user ${session.reader_id}`], ['Source', session.source], ['Status', session.status],
    ['Samples', session.sample_count], ['Label', session.label ? session.label.label : '—'],
  ];
  if (session.label && session.label.confidence !== null) rows.push(['Confidence', `${Math.round(session.label.confidence * 100)}%`]);
  document.getElementById('session-meta').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  document.getElementById('case-review-link').href = `/review/cases/${session.case_id}`;
  showQuality(session);
  document.getElementById('csv-link').href = `/api/sessions/${session.id}/samples?format=csv`;
}

function showQuality(session) {
  const box = document.getElementById('quality-flag');
  box.hidden = !session.quality_flag;
  if (!session.quality_flag) return;
  document.getElementById('quality-reason').textContent = session.quality_override
    ? `${session.quality_flag} (overridden by an admin: used for pair mining)` : session.quality_flag;
  const admin = root.dataset.admin === 'true';
  document.getElementById('quality-override-row').hidden = !admin;
  const toggle = document.getElementById('quality-override');
  toggle.checked = session.quality_override;
  toggle.onchange = async () => {
    const updated = await api(`/api/sessions/${session.id}/quality-override`, { method: 'PUT', json: { override: toggle.checked } });
    showQuality(updated);
  };
}

function bindPlayback(viewer, path) {
  const playback = new Playback(path.duration);
  const showPath = document.getElementById('show-path');
  const trail = document.getElementById('trail');
  viewer.overlays.push(scanpathOverlay(path, () => ({
    visible: showPath.checked, time: playback.time, trailMs: Number(trail.value),
  })));
  const play = document.getElementById('play-btn');
  const scrubber = document.getElementById('scrubber');
  const readout = document.getElementById('time-readout');
  play.addEventListener('click', () => playback.toggle());
  document.getElementById('speed').addEventListener('change', (e) => playback.setSpeed(Number(e.target.value)));
  scrubber.addEventListener('input', () => playback.seek((Number(scrubber.value) / 1000) * path.duration));
  showPath.addEventListener('change', () => viewer.requestRender());
  trail.addEventListener('change', () => viewer.requestRender());
  const follow = document.getElementById('follow-view');
  let shown = null;
  // Show each moment in the viewport the reader had then (recorded zoom/pan and window/level).
  const applyRecorded = () => {
    if (!follow.checked || !path.t.length) return;
    const i = sampleIndexAt(path, playback.time);
    const view = recordedView(path, i, viewer.cssW, viewer.cssH);
    const key = view && `${view.zoom},${view.panX},${view.panY}`;
    if (view && key !== shown) {
      shown = key;
      viewer.view = view; // as recorded, not re-constrained: the reader may have panned past the edge
      viewer.changed();
    }
    const wl = recordedWindow(path, i);
    if (wl && (wl.center !== viewer.wl.center || wl.width !== viewer.wl.width)) viewer.setWindow(wl.center, wl.width);
  };
  follow.addEventListener('change', () => { shown = null; if (follow.checked) applyRecorded(); else viewer.reset(); });
  new ResizeObserver(() => { shown = null; applyRecorded(); }).observe(viewer.container);
  playback.addEventListener('change', () => {
    applyRecorded();
    play.textContent = playback.playing ? 'Pause' : 'Play';
    scrubber.value = String(path.duration ? Math.round((playback.time / path.duration) * 1000) : 0);
    readout.textContent = `${(playback.time / 1000).toFixed(1)} / ${(path.duration / 1000).toFixed(1)} s`;
    readout.dataset.time = String(playback.time);
    viewer.requestRender();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === ' ' && !(e.target instanceof HTMLInputElement)) { e.preventDefault(); playback.toggle(); }
  });
  playback.seek(0);
  return playback;
}

async function load() {
  const session = await api(`/api/sessions/${sessionId}`);
  meta(session);
  const c = await api(`/api/cases/${session.case_id}`);
  const viewer = new ImageViewer(document.getElementById('viewer'));
  window.mcgip = { viewer, session };
  await viewer.load(session.case_id, c.image);
  const path = samplesToPath(await api(`/api/sessions/${sessionId}/samples`));
  window.mcgip.playback = bindPlayback(viewer, path);
  try {
    bindHeatmap(viewer, await api(`/api/sessions/${sessionId}/heatmap?size=64`));
  } catch (err) {
    document.getElementById('heat-info').textContent = `no heatmap: ${err.message}`;
  }
  window.mcgip.annotations = await bindAnnotations(viewer, session.case_id);
  root.dataset.state = 'ready';
}

load().catch((err) => {
  root.dataset.state = 'error';
  document.querySelector('.side').append(el('p', { class: 'error', 'data-testid': 'page-error' }, err.message));
});
