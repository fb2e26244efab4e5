// Admin console, users: create, change role, deactivate / reactivate, reset password.

import { api, el } from '../api.js';
import { clearErrors, showErrors } from '../forms.js';

const form = document.getElementById('user-form');
const body = document.querySelector('#user-table tbody');
const status = document.getElementById('user-status');

async function patch(user, change, done) {
  try {
    await api(`/api/users/${user.id}`, { method: 'PATCH', json: change });
    status.textContent = done;
    await load();
  } catch (err) {
    status.textContent = `${user.username}: ${err.message}`;
  }
}

function row(user) {
  const role = el('select', { 'aria-label': `Role of ${user.username}`, 'data-testid': `role-${user.username}` },
    ...['reader', 'admin'].map((r) => el('option', { value: r }, r)));
  role.value = user.role;
  role.addEventListener('change', () => patch(user, { role: role.value }, `${user.username} is now ${role.value}.`));
  const toggle = el('button', { type: 'button', class: 'small', 'data-testid': `active-${user.username}`,
    onclick: () => patch(user, { is_active: !user.is_active }, `${user.username} ${user.is_active ? 'deactivated' : 'reactivated'}.`) },
  user.is_active ? 'Deactivate' : 'Reactivate');
  const reset = el('button', { type: 'button', class: 'small', 'data-testid': `reset-${user.username}`, onclick: () => {
    const password = window.prompt(`New password for ${user.username} (at least 12 characters):`);
    if (password) patch(user, { password }, `Password of ${user.username} reset; their sessions and tokens ended.`);
  } }, 'Reset password');
  return el('tr', { 'data-user': user.username, 'data-active': String(user.is_active) },
    el('td', {}, user.username), el('td', {}, user.display_name || ''), el('td', {}, role),
    el('td', {}, user.is_active ? 'yes' : 'no'), el('td', { class: 'actions' }, toggle, ' ', reset));
}

async function load() {
  const users = await api('/api/users');
  body.replaceChildren(...users.map(row));
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(form);
  const data = Object.fromEntries(new FormData(form));
  try {
    const user = await api('/api/users', { method: 'POST', json: data });
    status.textContent = `Created ${user.username}.`;
    form.reset();
    await load();
  } catch (err) {
    showErrors(form, err);
  }
});

load();
