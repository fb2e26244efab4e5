import { api, el } from './api.js';

async function loadWorklist() {
  const items = await api('/api/worklist');
  const body = document.querySelector('#worklist tbody');
  body.replaceChildren();
  for (const item of items) {
    const c = item.case;
    body.append(el('tr', {},
      el('td', {}, el('img', { src: `/api/cases/${c.id}/thumbnail`, class: 'thumb', alt: '' })),
      el('td', {}, el('a', { href: `/read/${c.id}`, 'data-testid': `read-${c.id}` }, c.title || `Case ${c.id}`)),
      el('td', {}, c.dataset_name),
      el('td', {}, item.sessions),
      el('td', {}, item.finished ? 'read' : 'to read')));
  }
  document.getElementById('worklist-empty').hidden = items.length > 0;
}

loadWorklist();
