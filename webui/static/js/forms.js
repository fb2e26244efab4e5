// Form errors, all at once: a 422's every validation error is listed in the form's summary and next
// to (and on) the field it names; other errors go to the summary.

import { el } from './api.js';

/** Messages from an ApiError's detail: [{field, message}] (field null when it names none). */
export function errorList(detail) {
  if (Array.isArray(detail)) {
    return detail.map((e) => {
      const loc = (e.loc || []).filter((p) => p !== 'body');
      return { field: loc.length ? loc.join('.') : null, message: e.msg || String(e) };
    });
  }
  return [{ field: null, message: typeof detail === 'string' ? detail : JSON.stringify(detail) }];
}

export function clearErrors(form) {
  form.querySelector('.form-errors ul')?.replaceChildren();
  for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  for (const node of form.querySelectorAll('.field-error')) node.remove();
}

/** Show every error of `err` (an ApiError or Error) in `form`. */
export function showErrors(form, err) {
  clearErrors(form);
  const errors = errorList(err.detail ?? err.message);
  let box = form.querySelector('.form-errors');
  if (!box) {
    // The live region wraps the list: a role on the <ul> itself would hide its list semantics.
    box = el('div', { class: 'form-errors error', role: 'alert', 'data-testid': 'form-errors' }, el('ul', {}));
    form.prepend(box);
  }
  const summary = box.querySelector('ul');
  for (const { field, message } of errors) {
    summary.append(el('li', {}, field ? `${field}: ${message}` : message));
    const input = field && (form.querySelector(`[name="${field}"]`) || form.querySelector(`[name="${field.split('.')[0]}"]`));
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.after(el('span', { class: 'field-error error' }, message));
    }
  }
}
