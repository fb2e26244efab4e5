// Keyboard shortcuts with a help overlay listing them (toggled with ? or H).

import { el } from '../api.js';

function isTyping(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName));
}

/** Normalised key name for an event: "Ctrl+Enter", "+", "ArrowLeft", "b". */
export function keyName(event) {
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return `${event.ctrlKey || event.metaKey ? 'Ctrl+' : ''}${event.altKey ? 'Alt+' : ''}${key}`;
}

export class Shortcuts {
  /**
   * @param {Array<{keys: string[], label: string, run: (e: KeyboardEvent) => void, inInputs?: boolean,
   *   when?: (e: KeyboardEvent) => boolean}>} bindings  `when` false: the key keeps its default action
   */
  constructor(bindings) {
    this.bindings = [
      ...bindings,
      { keys: ['?', 'h'], label: 'Show or hide this help', run: () => this.toggleHelp() },
      { keys: ['Escape'], label: 'Close help / cancel', run: () => this.toggleHelp(false), inInputs: true, hidden: true },
    ];
    this.byKey = new Map();
    for (const b of this.bindings) for (const k of b.keys) this.byKey.set(k, b);
    this.overlay = this.buildOverlay();
    document.body.append(this.overlay);
    document.addEventListener('keydown', (e) => this.onKey(e));
  }

  onKey(event) {
    const binding = this.byKey.get(keyName(event));
    if (!binding) return;
    if (isTyping(event.target) && !binding.inInputs) return;
    if (binding.when && !binding.when(event)) return;
    event.preventDefault();
    binding.run(event);
  }

  buildOverlay() {
    const rows = this.bindings.filter((b) => !b.hidden).map((b) => el('tr', {},
      el('td', {}, ...b.keys.flatMap((k, i) => [i ? ' ' : null, el('kbd', {}, k)])),
      el('td', {}, b.label)));
    const close = el('button', { type: 'button', onclick: () => this.toggleHelp(false) }, 'Close');
    return el('div', { class: 'help-overlay', 'data-testid': 'shortcut-help', hidden: '', role: 'dialog', 'aria-label': 'Keyboard shortcuts' },
      el('div', { class: 'card' }, el('h2', {}, 'Keyboard shortcuts'), el('table', { class: 'grid' }, el('tbody', {}, ...rows)), close));
  }

  toggleHelp(show = this.overlay.hidden) {
    this.overlay.hidden = !show;
  }
}
