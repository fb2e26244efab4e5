// Worklist page: per-status counts and filters, search, sorting, "next unread" and keyboard control.

import { api, el } from './api.js';
import { Shortcuts } from './viewer/shortcuts.js';
import {
  caseTitle, countByStatus, nextUnread, STATUS_LABEL, STATUSES, visibleItems,
} from './worklist/model.js';

const table = document.getElementById('worklist');
const body = table.querySelector('tbody');
const search = document.getElementById('worklist-search');
const sortSelect = document.getElementById('worklist-sort');
const nextButton = document.getElementById('next-unread');
const filterBar = document.getElementById('worklist-filters');
const state = { items: [], status: 'unread', query: '', sort: 'priority', selected: 0 };

function readUrl(caseId) { return `/read/${caseId}`; }

function renderFilters() {
  const counts = countByStatus(state.items);
  filterBar.replaceChildren(...['all', ...STATUSES].map((status) => {
    const n = status === 'all' ? state.items.length : counts[status];
    return el('button', {
      type: 'button',
      class: `chip${state.status === status ? ' active' : ''}`,
      'aria-pressed': String(state.status === status),
      'data-status': status,
      'data-testid': `filter-${status}`,
      onclick: () => { state.status = status; state.selected = 0; render(); },
    }, `${status === 'all' ? 'All' : STATUS_LABEL[status]} `, el('span', { class: 'count' }, String(n)));
  }));
}

async function toggleSkip(item) {
  const method = item.status === 'skipped' ? 'DELETE' : 'PUT';
  const out = await api(`/api/worklist/${item.case.id}/skip`, { method });
  item.status = out.status;
  render();
}

function row(item, index) {
  const c = item.case;
  const skipLabel = item.status === 'skipped' ? 'Unskip' : 'Skip';
  return el('tr', {
    'data-case-id': c.id, 'data-status': item.status, class: index === state.selected ? 'selected' : '',
    'aria-selected': String(index === state.selected),
  },
  el('td', {}, el('img', { src: `/api/cases/${c.id}/thumbnail`, class: 'thumb', alt: `Thumbnail of ${caseTitle(item)}` })),
  el('td', {}, el('a', { href: readUrl(c.id), 'data-testid': `read-${c.id}` }, caseTitle(item))),
  el('td', {}, c.dataset_name),
  el('td', {}, el('span', { class: `status status-${item.status}`, 'data-testid': `status-${c.id}` }, STATUS_LABEL[item.status])),
  el('td', {}, item.label || ''),
  el('td', {}, String(item.sessions)),
  el('td', {}, item.status === 'read' ? '' : el('button', {
    type: 'button', class: 'small', 'data-testid': `skip-${c.id}`, onclick: () => toggleSkip(item),
    'aria-label': `${skipLabel} ${caseTitle(item)}`,
  }, skipLabel)));
}

function shown() {
  return visibleItems(state.items, state);
}

function render() {
  renderFilters();
  const items = shown();
  state.selected = Math.min(state.selected, Math.max(0, items.length - 1));
  body.replaceChildren(...items.map(row));
  const empty = document.getElementById('worklist-empty');
  empty.hidden = items.length > 0;
  empty.textContent = state.items.length === 0 ? 'No cases assigned.' : 'No cases match this filter.';
  const next = nextUnread(state.items);
  nextButton.disabled = next === null;
  nextButton.dataset.caseId = next === null ? '' : String(next);
  document.getElementById('worklist-summary').textContent = next === null
    ? 'Nothing left to read.' : `${countByStatus(state.items).unread} unread`;
}

function moveSelection(delta) {
  const n = shown().length;
  if (!n) return;
  state.selected = (state.selected + delta + n) % n;
  render();
  body.querySelector('tr.selected')?.scrollIntoView({ block: 'nearest' });
}

function selectedItem() {
  return shown()[state.selected] || null;
}

function openNext() {
  const next = nextUnread(state.items);
  if (next !== null) window.location.href = readUrl(next);
}

function bind() {
  search.addEventListener('input', () => { state.query = search.value; state.selected = 0; render(); });
  sortSelect.addEventListener('change', () => { state.sort = sortSelect.value; render(); });
  nextButton.addEventListener('click', openNext);
  const statusKeys = ['all', ...STATUSES];
  new Shortcuts([
    { keys: ['n'], label: 'Open the next unread case', run: openNext },
    { keys: ['j', 'ArrowDown'], label: 'Select the next row', run: () => moveSelection(1) },
    { keys: ['k', 'ArrowUp'], label: 'Select the previous row', run: () => moveSelection(-1) },
    { keys: ['Enter', 'o'], label: 'Open the selected case', when: (e) => !(e.target instanceof HTMLButtonElement || e.target instanceof HTMLAnchorElement), run: () => {
      const item = selectedItem();
      if (item) window.location.href = readUrl(item.case.id);
    } },
    { keys: ['s'], label: 'Skip / unskip the selected case', run: () => {
      const item = selectedItem();
      if (item && item.status !== 'read') toggleSkip(item);
    } },
    { keys: ['/'], label: 'Search', run: () => search.focus() },
    { keys: ['1', '2', '3', '4', '5'], label: 'Filter: all, unread, in progress, read, skipped', run: (e) => {
      state.status = statusKeys[Number(e.key) - 1];
      state.selected = 0;
      render();
    } },
  ]);
}

async function load() {
  state.items = await api('/api/worklist');
  // Start on what is left to do; with nothing unread, show everything.
  if (!state.items.some((item) => item.status === 'unread')) state.status = 'all';
  render();
  table.dataset.state = 'ready';
}

bind();
load();
