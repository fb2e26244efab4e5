// Case review: the image with the heatmap aggregated over the sessions the caller may see.

import { api, el } from '../api.js';
import { ImageViewer } from '../viewer/image-viewer.js';
import { bindAnnotations, bindHeatmap, sessionRow } from './common.js';

const root = document.getElementById('review');
const caseId = Number(root.dataset.caseId);

async function load() {
  const c = await api(`/api/cases/${caseId}`);
  document.getElementById('case-title').textContent = c.title || `Case ${c.id}`;
  const viewer = new ImageViewer(document.getElementById('viewer'));
  window.mcgip = { viewer };
  await viewer.load(caseId, c.image);
  const [heatmap, sessions] = await Promise.all([
    api(`/api/cases/${caseId}/heatmap?size=64`),
    api(`/api/sessions?case_id=${caseId}&limit=1000`),
  ]);
  window.mcgip.heatmap = heatmap;
  bindHeatmap(viewer, heatmap);
  window.mcgip.annotations = await bindAnnotations(viewer, caseId);
  document.querySelector('#session-table tbody').replaceChildren(...sessions.map((s) => sessionRow(s, { withCase: false })));
  root.dataset.state = 'ready';
}

load().catch((err) => {
  root.dataset.state = 'error';
  document.querySelector('.side').append(el('p', { class: 'error', 'data-testid': 'page-error' }, err.message));
});
