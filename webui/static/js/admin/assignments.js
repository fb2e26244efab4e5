// Admin console, assignments: a dataset's cases (filtered) onto readers' worklists, round-robin or to all.

import { api, el } from '../api.js';
import { clearErrors, showErrors } from '../forms.js';

const form = document.getElementById('assign-form');
const names = new Map();

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(form);
  const data = new FormData(form);
  const body = {
    dataset_id: Number(data.get('dataset_id')),
    reader_ids: data.getAll('reader_ids').map(Number),
    mode: data.get('mode'),
    only_unassigned: data.get('only_unassigned') === 'on',
    search: data.get('search') || null,
  };
  try {
    const out = await api('/api/assignments/bulk', { method: 'POST', json: body });
    const table = document.getElementById('assign-result');
    table.querySelector('tbody').replaceChildren(...Object.entries(out.per_reader).map(([id, n]) => el('tr', { 'data-reader': names.get(Number(id)) },
      el('td', {}, names.get(Number(id)) || `user ${id}`), el('td', {}, String(n)))));
    table.hidden = false;
    document.getElementById('assign-status').textContent = `${out.cases} matching cases, ${out.assignments} new assignments.`;
  } catch (err) {
    showErrors(form, err);
  }
});

(async () => {
  const [datasets, readers] = await Promise.all([api('/api/datasets'), api('/api/users?role=reader')]);
  document.getElementById('assign-dataset').replaceChildren(...datasets.map((d) => el('option', { value: d.id }, d.name)));
  document.getElementById('assign-readers').replaceChildren(...readers.filter((r) => r.is_active).map((r) => {
    names.set(r.id, r.display_name || r.username);
    return el('label', { class: 'chip' }, el('input', { type: 'checkbox', name: 'reader_ids', value: r.id, 'data-testid': `reader-${r.username}` }), ` ${r.display_name || r.username}`);
  }));
  form.dataset.state = 'ready';
})();
