// Case page: metadata and a view-only viewer (no reading session, no gaze).

import { api, el } from './api.js';
import { ImageViewer } from './viewer/image-viewer.js';

const view = document.getElementById('case-view');
const caseId = Number(view.dataset.caseId);

async function load() {
  const c = await api(`/api/cases/${caseId}`);
  document.getElementById('case-title').textContent = c.title || `Case ${c.id}`;
  const meta = document.getElementById('case-meta');
  const rows = [['Dataset', c.dataset_name]];
  if (c.image) {
    rows.push(['Format', c.image.format], ['Size', `${c.image.width}×${c.image.height}`],
      ['Bits', c.image.bits_stored], ['Window', `${c.image.window_center} / ${c.image.window_width}`]);
    if (c.image.modality) rows.push(['Modality', c.image.modality]);
  }
  if (c.reference_label) rows.push(['Reference', c.reference_label]);
  for (const [k, v] of rows) meta.append(el('dt', {}, k), el('dd', {}, v));
  if (!c.image) throw new Error('this case has no stored image');
  const viewer = new ImageViewer(document.getElementById('viewer'));
  window.mcgip = { viewer };
  const readout = document.getElementById('view-readout');
  viewer.addEventListener('viewchange', () => {
    readout.textContent = `zoom ${(viewer.view.zoom * 100).toFixed(0)}% · W ${viewer.wl.width.toFixed(0)} L ${viewer.wl.center.toFixed(0)}`;
  });
  await viewer.load(caseId, c.image);
  document.getElementById('fit-btn').addEventListener('click', () => viewer.fit());
  document.getElementById('invert-btn').addEventListener('click', () => viewer.toggleInvert());
  document.getElementById('reset-btn').addEventListener('click', () => viewer.reset());
  view.dataset.state = 'ready';
}

load().catch((err) => {
  view.dataset.state = 'error';
  document.querySelector('.side').append(el('p', { class: 'error', 'data-testid': 'page-error' }, err.message));
});
