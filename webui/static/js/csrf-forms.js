// Plain HTML forms marked data-csrf-form post with the session's CSRF token in a header.
import { csrfToken } from './api.js';

for (const form of document.querySelectorAll('form[data-csrf-form]')) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const res = await fetch(form.action, {
      method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrfToken() },
      redirect: 'follow',
    });
    window.location.href = res.redirected ? res.url : '/login';
  });
}
