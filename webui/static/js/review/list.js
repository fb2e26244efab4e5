import { api } from '../api.js';
import { sessionRow } from './common.js';

async function load() {
  const sessions = await api('/api/sessions?limit=500');
  const body = document.querySelector('#session-table tbody');
  body.replaceChildren(...sessions.map((s) => sessionRow(s)));
  document.getElementById('sessions-empty').hidden = sessions.length > 0;
}

load();
