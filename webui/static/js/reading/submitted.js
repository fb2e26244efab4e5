// The reader's submitted diagnosis of this case: stays visible after finishing, and can be amended
// (PUT /api/sessions/{id}/label; the server keeps the earlier versions in the label's history).

import { api, el } from '../api.js';

function describe(label) {
  const parts = [label.label];
  if (label.confidence !== null && label.confidence !== undefined) parts.push(`${Math.round(label.confidence * 100)}%`);
  if (label.finding_box) parts.push('with finding box');
  return parts.join(' · ');
}

export class SubmittedLabel {
  /**
   * @param {HTMLElement} root  the #submitted section
   * @param {string[]} labels  the dataset's label set
   */
  constructor(root, labels) {
    this.root = root;
    this.labels = labels;
    this.session = null;
    this.current = root.querySelector('#submitted-label');
    this.history = root.querySelector('#submitted-history');
    this.form = root.querySelector('#amend-form');
    this.status = root.querySelector('#amend-status');
    this.select = this.form.querySelector('#amend-label');
    for (const label of labels) this.select.append(el('option', { value: label }, label));
    root.querySelector('#amend-btn').addEventListener('click', () => this.openForm());
    this.form.querySelector('#amend-cancel').addEventListener('click', () => { this.form.hidden = true; });
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.amend(); });
  }

  /** Show a finished session's diagnosis (null hides the panel). */
  show(session) {
    this.session = session;
    this.root.hidden = !session || !session.label;
    if (this.root.hidden) return;
    const { label } = session;
    this.current.textContent = describe(label);
    this.root.dataset.label = label.label;
    const history = label.history || [];
    this.history.replaceChildren(...history.map((h) => el('li', {}, `${describe(h)} (until ${new Date(h.replaced_at).toLocaleString()})`)));
    this.history.hidden = history.length === 0;
  }

  openForm() {
    const { label } = this.session;
    this.select.value = label.label;
    const confidence = this.form.querySelector('#amend-confidence');
    confidence.value = label.confidence === null || label.confidence === undefined ? '' : String(Math.round(label.confidence * 100));
    this.form.hidden = false;
    this.status.textContent = '';
    this.select.focus();
  }

  async amend() {
    const { label } = this.session;
    const raw = this.form.querySelector('#amend-confidence').value.trim();
    const confidence = raw === '' ? null : Number(raw) / 100;
    if (confidence !== null && !(confidence >= 0 && confidence <= 1)) {
      this.status.textContent = 'Confidence must be between 0 and 100.';
      return;
    }
    try {
      const session = await api(`/api/sessions/${this.session.id}/label`, {
        method: 'PUT',
        json: { label: this.select.value, confidence, finding_box: label.finding_box },
      });
      this.form.hidden = true;
      this.show(session);
      this.status.textContent = 'Diagnosis amended; the earlier one is kept in the history.';
    } catch (err) {
      this.status.textContent = `Could not amend: ${err.message}`;
    }
  }
}

/** The reader's latest finished session on the case (with its label), or null. */
export async function latestFinished(caseId, userId) {
  const params = new URLSearchParams({ case_id: caseId, reader_id: userId, status: 'finished' });
  const found = await api(`/api/sessions?${params}`);
  const items = (Array.isArray(found) ? found : found.items || []).filter((s) => s.reader_id === userId && s.label);
  return items.sort((a, b) => b.id - a.id)[0] || null;
}
