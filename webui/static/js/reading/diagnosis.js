// The diagnosis form: a label from the dataset's label set, a confidence, an optional finding box.

import { el } from '../api.js';

export class DiagnosisForm {
  /**
   * @param {HTMLFormElement} form
   * @param {string[]} labels
   * @param {import('../viewer/image-viewer.js').ImageViewer} viewer  holds the finding box
   */
  constructor(form, labels, viewer) {
    this.form = form;
    this.labels = labels;
    this.viewer = viewer;
    const set = form.querySelector('#label-set');
    labels.forEach((label, i) => {
      set.append(el('label', { class: 'label-choice' },
        el('input', { type: 'radio', name: 'label', value: label, 'data-testid': `label-${label}` }),
        ` ${label}`, i < 9 ? el('kbd', {}, String(i + 1)) : null));
    });
    this.confidence = form.querySelector('#confidence');
    this.noConfidence = form.querySelector('#confidence-none');
    const out = form.querySelector('#confidence-out');
    const showConfidence = () => {
      this.confidence.disabled = this.noConfidence.checked;
      out.textContent = this.noConfidence.checked ? '—' : `${this.confidence.value}%`;
    };
    this.confidence.addEventListener('input', showConfidence);
    this.noConfidence.addEventListener('change', showConfidence);
    form.addEventListener('change', () => this.refresh());
    form.querySelector('#box-clear').addEventListener('click', () => viewer.setBox(null));
    viewer.addEventListener('boxchange', () => this.refresh());
    this.refresh();
  }

  selectIndex(i) {
    const input = this.form.querySelectorAll('input[name="label"]')[i];
    if (input && !input.disabled) {
      input.checked = true;
      this.refresh();
    }
  }

  get label() {
    const checked = this.form.querySelector('input[name="label"]:checked');
    return checked ? checked.value : null;
  }

  refresh() {
    const b = this.viewer.box;
    this.form.querySelector('#box-readout').textContent = b ? `${b.x0},${b.y0} – ${b.x1},${b.y1} px` : 'none';
    this.form.querySelector('#finish-btn').disabled = this.locked || !this.label;
  }

  /** Body of POST /api/sessions/{id}/finish. */
  payload() {
    return {
      label: this.label,
      confidence: this.noConfidence.checked ? null : Number(this.confidence.value) / 100,
      finding_box: this.viewer.box ? { ...this.viewer.box } : null,
    };
  }

  lock(locked) {
    this.locked = locked;
    for (const input of this.form.querySelectorAll('input, button')) input.disabled = locked;
    this.refresh();
  }
}
