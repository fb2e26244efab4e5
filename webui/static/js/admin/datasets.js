// Admin console, datasets: the list, and a create form whose settings part is generated from the
// typed dataset settings' JSON schema.

import { api, el } from '../api.js';
import { clearErrors, showErrors } from '../forms.js';
import { buildSchemaForm, readSchemaForm } from './schema-form.js';

const form = document.getElementById('dataset-form');
const fields = document.getElementById('settings-fields');

async function load() {
  const datasets = await api('/api/datasets');
  document.querySelector('#dataset-table tbody').replaceChildren(...datasets.map((d) => el('tr', { 'data-dataset': d.name },
    el('td', {}, d.name), el('td', {}, d.label_set.join(', ')), el('td', {}, d.image_kind))));
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(form);
  const data = new FormData(form);
  const body = {
    name: data.get('name'),
    description: data.get('description'),
    label_set: String(data.get('label_set')).split(',').map((s) => s.trim()).filter(Boolean),
    image_kind: data.get('image_kind'),
    settings: readSchemaForm(fields, 'settings'),
  };
  try {
    const made = await api('/api/datasets', { method: 'POST', json: body });
    document.getElementById('dataset-status').textContent = `Created dataset ${made.name}.`;
    await load();
  } catch (err) {
    showErrors(form, err);
  }
});

(async () => {
  buildSchemaForm(fields, await api('/api/datasets-settings-schema'), 'settings');
  form.dataset.state = 'ready';
  await load();
})();
