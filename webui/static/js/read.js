// Reading page: viewer + gaze source + lossless stream + diagnosis form for one case.

import { api, el } from './api.js';
import { Recorder, SessionClock } from './gaze/recorder.js';
import { DiagnosisForm } from './reading/diagnosis.js';
import { openOrResume } from './reading/session.js';
import { preferredKind, savePreferredKind, selectableKinds, sourceFromPage } from './reading/sources.js';
import { bindStreamStatus } from './reading/status.js';
import { readUrl, worklistNeighbours } from './reading/worklist-nav.js';
import { drainLeftovers, GazeStream } from './stream.js';
import { openOutbox } from './outbox.js';
import { ImageViewer } from './viewer/image-viewer.js';
import { Shortcuts } from './viewer/shortcuts.js';
import { formatWindow, valueStats, windowPresets } from './viewer/presets.js';
import { renderTags } from './reading/tags.js';
import { bindGazePanel } from './reading/gaze-panel.js';
import { latestFinished, SubmittedLabel } from './reading/submitted.js';

const root = document.getElementById('reader');
const caseId = Number(root.dataset.caseId);
const userId = Number(root.dataset.userId);
const params = new URLSearchParams(window.location.search);
const finishStatus = document.getElementById('finish-status');
const DRAIN_TIMEOUT_MS = 15000;

// Exposed for diagnostics (and the browser tests): the live objects of this page.
const page = {
  viewer: null, source: null, stream: null, session: null, recorder: null, form: null, presets: [], submitted: null,
};
window.mcgip = page;

function setState(state) {
  root.dataset.state = state;
}

function showView(viewer) {
  const { zoom } = viewer.view;
  document.getElementById('view-readout').textContent =
    `zoom ${(zoom * 100).toFixed(0)}% · ${formatWindow(viewer.wl.center, viewer.wl.width)}${viewer.invert ? ' · inverted' : ''}`;
  const select = document.getElementById('wl-preset');
  const match = page.presets.find((p) => Math.abs(p.center - viewer.wl.center) < 1e-6 && Math.abs(p.width - viewer.wl.width) < 1e-6);
  select.value = match ? match.id : 'custom';
}

function showRuler(viewer) {
  const out = document.getElementById('ruler-readout');
  const length = viewer.rulerLength;
  out.hidden = !length;
  out.textContent = length ? `Ruler: ${length.text}` : '';
  out.dataset.unit = length ? length.unit : '';
}

function bindPresets(viewer, image) {
  page.presets = windowPresets(image, valueStats(viewer.image));
  const select = document.getElementById('wl-preset');
  select.replaceChildren(
    ...page.presets.map((p) => el('option', { value: p.id }, `${p.name} (${formatWindow(p.center, p.width)})`)),
    el('option', { value: 'custom', disabled: '' }, 'Custom (dragged)'));
  select.addEventListener('change', () => applyPreset(viewer, select.value));
  showView(viewer);
}

function applyPreset(viewer, id) {
  const preset = page.presets.find((p) => p.id === id);
  if (preset) viewer.setWindow(preset.center, preset.width);
}

function cyclePreset(viewer) {
  const select = document.getElementById('wl-preset');
  const i = page.presets.findIndex((p) => p.id === select.value);
  const next = page.presets[(i + 1) % page.presets.length];
  if (next) applyPreset(viewer, next.id);
}

function bindTools(viewer) {
  for (const button of document.querySelectorAll('[data-tool]')) {
    button.addEventListener('click', () => viewer.setTool(button.dataset.tool));
  }
  viewer.addEventListener('toolchange', (e) => {
    for (const button of document.querySelectorAll('[data-tool]')) {
      button.classList.toggle('active', button.dataset.tool === e.detail);
    }
  });
  viewer.setTool('pan');
  document.getElementById('fit-btn').addEventListener('click', () => viewer.fit());
  document.getElementById('actual-btn').addEventListener('click', () => viewer.actualSize());
  document.getElementById('invert-btn').addEventListener('click', () => viewer.toggleInvert());
  document.getElementById('reset-btn').addEventListener('click', () => viewer.reset());
  viewer.addEventListener('viewchange', () => showView(viewer));
  viewer.addEventListener('rulerchange', () => showRuler(viewer));
}

function bindShortcuts(viewer, form, nav) {
  const go = (id) => { if (id !== null) window.location.href = readUrl(id); };
  const step = 60;
  const shortcuts = new Shortcuts([
    { keys: ['+', '='], label: 'Zoom in', run: () => viewer.zoomBy(1.25) },
    { keys: ['-'], label: 'Zoom out', run: () => viewer.zoomBy(0.8) },
    { keys: ['0', 'f'], label: 'Fit image', run: () => viewer.fit() },
    { keys: ['a'], label: 'Actual size (1 image px = 1 CSS px)', run: () => viewer.actualSize() },
    { keys: ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'], label: 'Pan', run: (e) => {
      const d = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[e.key];
      viewer.panBy(d[0], d[1]);
    } },
    { keys: ['r'], label: 'Reset view and window/level', run: () => viewer.reset() },
    { keys: ['i'], label: 'Invert', run: () => viewer.toggleInvert() },
    { keys: ['v'], label: 'Pan tool (left drag pans)', run: () => viewer.setTool('pan') },
    { keys: ['w'], label: 'Window/level tool (right drag always adjusts W/L)', run: () => viewer.setTool('wl') },
    { keys: ['b'], label: 'Finding box tool (drag a box on the image)', run: () => viewer.setTool('box') },
    { keys: ['m'], label: 'Ruler (drag to measure; mm where the image gives its pixel spacing)', run: () => viewer.setTool('ruler') },
    { keys: ['l'], label: 'Next window/level preset', run: () => cyclePreset(viewer) },
    { keys: ['Delete', 'Backspace'], label: 'Clear the finding box', run: () => viewer.setBox(null) },
    { keys: ['1', '2', '3', '4', '5', '6', '7', '8', '9'],
      label: 'Choose diagnosis 1–9', run: (e) => form.selectIndex(Number(e.key) - 1) },
    { keys: ['Ctrl+Enter'], label: 'Finish case', run: () => form.form.requestSubmit(), inInputs: true },
    { keys: [']'], label: 'Next case on the worklist', run: () => go(nav.next) },
    { keys: ['n'], label: 'Next unread case', run: () => go(nav.nextUnread) },
    { keys: ['[', 'p'], label: 'Previous case on the worklist', run: () => go(nav.prev) },
  ]);
  document.getElementById('help-btn').addEventListener('click', () => shortcuts.toggleHelp());
}

function bindNav(nav) {
  const prev = document.getElementById('prev-case');
  const next = document.getElementById('next-case');
  if (nav.prev !== null) { prev.href = readUrl(nav.prev); prev.hidden = false; }
  if (nav.next !== null) { next.href = readUrl(nav.next); next.hidden = false; }
  document.getElementById('case-position').textContent =
    nav.index >= 0 ? `${nav.index + 1} of ${nav.total}` : 'not on your worklist';
}

function bindSourceChoice() {
  const select = document.getElementById('source-choice');
  for (const kind of selectableKinds()) select.append(el('option', { value: kind }, kind));
  select.value = preferredKind();
  select.addEventListener('change', () => savePreferredKind(select.value));
}

async function finish(form, nav) {
  const { source, stream, session } = page;
  form.lock(true);
  finishStatus.textContent = 'Sending the last gaze frames…';
  await source.stop();
  const drained = await stream.drain(DRAIN_TIMEOUT_MS);
  if (!drained) {
    finishStatus.textContent = `${stream.pendingFrames} gaze frames are not yet stored on the server `
      + '(they are kept in this browser and sent when the connection returns). Try again in a moment.';
    form.lock(false);
    return;
  }
  try {
    page.session = await api(`/api/sessions/${session.id}/finish`, { method: 'POST', json: form.payload() });
  } catch (err) {
    finishStatus.textContent = `Could not finish the case: ${err.message}`;
    form.lock(false);
    return;
  }
  stream.close();
  await stream.outbox.dropSession(session.id);
  page.submitted.show(page.session);
  setState('finished');
  // Listeners (the AI second read) act only now that the diagnosis is stored and gaze has ended.
  document.dispatchEvent(new CustomEvent('mcgip:diagnosis-submitted', { detail: { sessionId: session.id, caseId } }));
  finishStatus.replaceChildren(`Finished (${page.session.sample_count} samples). `,
    nav.nextUnread !== null
      ? el('a', { href: readUrl(nav.nextUnread), 'data-testid': 'next-after-finish' }, 'Next unread case →')
      : el('a', { href: '/' }, 'All read: back to the worklist'));
}

async function start() {
  const c = await api(`/api/cases/${caseId}`);
  document.getElementById('case-title').textContent = c.title || `Case ${c.id}`;
  if (!c.image) throw new Error('this case has no image');
  const [dataset, nav] = await Promise.all([api(`/api/datasets/${c.dataset_id}`), worklistNeighbours(caseId)]);
  bindNav(nav);
  bindSourceChoice();

  const viewer = new ImageViewer(document.getElementById('viewer'));
  page.viewer = viewer;
  bindTools(viewer);
  await viewer.load(caseId, c.image);
  bindPresets(viewer, c.image);
  renderTags(document.getElementById('tag-list'), c.image);
  page.submitted = new SubmittedLabel(document.getElementById('submitted'), dataset.label_set);
  page.submitted.show(await latestFinished(caseId, userId));
  const form = new DiagnosisForm(document.getElementById('diagnosis-form'), dataset.label_set, viewer);
  page.form = form;
  bindShortcuts(viewer, form, nav);
  form.form.addEventListener('submit', (e) => { e.preventDefault(); finish(form, nav); });

  const source = await sourceFromPage(params, viewer);
  page.source = source;
  document.getElementById('source-kind').textContent = source.kind + (source.isEyeGaze ? '' : ' (not eye gaze)');
  bindGazePanel(source, document.getElementById('gaze-panel'));
  // A source that cannot run (no camera, permission denied) stops here, before a session exists.
  await source.preflight();
  const { session, created } = await openOrResume(caseId, userId, source);
  page.session = session;
  root.dataset.sessionId = String(session.id);

  const outbox = await openOutbox();
  const stream = new GazeStream({ sessionId: session.id, outbox, fresh: created });
  page.stream = stream;
  bindStreamStatus(stream, document.getElementById('stream-status'));
  await stream.open();
  if (stream.t0 === null) await stream.setT0(Date.parse(session.started_at));
  drainLeftovers(outbox, session.id);
  // A closing page cuts the samples it still holds into a frame; the outbox keeps it.
  window.addEventListener('pagehide', () => stream.flush());

  page.recorder = new Recorder({ source, viewer, stream, clock: new SessionClock(stream.t0) });
  const sourceState = document.getElementById('source-state');
  source.addEventListener('end', () => {
    sourceState.textContent = 'ended';
    sourceState.dataset.state = 'ended';
    stream.flush();
  });
  await source.start();
  sourceState.textContent = 'running';
  sourceState.dataset.state = 'running';
  setState('reading');
}

start().catch((err) => {
  setState('error');
  console.error(err);
  finishStatus.replaceChildren(el('span', { class: 'error', 'data-testid': 'page-error' }, err.message));
});
