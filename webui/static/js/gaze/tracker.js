// A hardware eye tracker at the reading station, through `mcgip tracker-bridge`: the bridge sends
// screen-normalised gaze to the server's /ws/tracker relay, and this source (subscribed with the
// page's login) turns it into viewport samples. Screen fractions -> CSS px of this viewport uses
// the window's position on the screen, exact in full-screen (kiosk) mode, which the reading
// station should use. Bridge times are wall-clock epoch ms; performance.timeOrigin puts them on
// this page's clock, and from there the recorder puts them on the session clock.

import { api } from '../api.js';
import { GazeSource, registerSource } from './source.js';

/** Screen fraction -> viewport CSS px for the current window placement. */
export function screenToViewport(fx, fy, win = window) {
  const chromeX = Math.max(0, win.outerWidth - win.innerWidth);
  const chromeY = Math.max(0, win.outerHeight - win.innerHeight);
  // Browser chrome sits on top (toolbars) and evenly on the sides (borders).
  const x = fx * win.screen.width - (win.screenX || 0) - chromeX / 2;
  const y = fy * win.screen.height - (win.screenY || 0) - chromeY;
  return { x, y };
}

export class TrackerSource extends GazeSource {
  static kind = 'tracker';

  static isEyeGaze = true;

  constructor(options = {}) {
    super(options);
    this.details = { bridge: 'mcgip tracker-bridge' };
    this.bridges = 0;
    this.socket = null;
    this.closed = false;
    this.retryMs = 500;
    this.persisting = null;
    this.dirty = false;
  }

  info() { return this.details; }

  sessionId() {
    return this.options.sessionId ?? (window.mcgip && window.mcgip.session && window.mcgip.session.id);
  }

  url() {
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${window.location.host}/ws/tracker?role=viewer`;
  }

  async start() {
    if (this.running) return;
    this.closed = false;
    await this.connect();
    this.running = true;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url());
      this.socket = socket;
      let opened = false;
      socket.addEventListener('open', () => { opened = true; this.retryMs = 500; resolve(); });
      socket.addEventListener('message', (e) => this.onMessage(e.data));
      socket.addEventListener('close', (e) => {
        this.setBridges(0);
        if (!opened) { reject(new Error(`tracker relay refused the connection (${e.code})`)); return; }
        if (!this.closed && e.code !== 4401 && e.code !== 4403) {
          setTimeout(() => { if (!this.closed) this.connect().catch(() => {}); }, this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, 10000);
        }
      });
    });
  }

  setBridges(n) {
    this.bridges = n;
    this.dispatchEvent(new CustomEvent('bridges', { detail: n }));
    document.documentElement.dataset.trackerBridges = String(n);
  }

  onMessage(text) {
    let message;
    try { message = JSON.parse(text); } catch (_) { return; }
    if (message.type === 'status' && typeof message.bridges === 'number') {
      this.setBridges(message.bridges);
    } else if (message.type === 'tracker' && message.info) {
      Object.assign(this.details, { tracker: { ...(this.details.tracker || {}), ...message.info } });
      this.persist();
    } else if (message.type === 'samples' && Array.isArray(message.samples)) {
      for (const [tEpoch, fx, fy, valid] of message.samples) {
        const t = tEpoch - performance.timeOrigin;
        if (valid) {
          const p = screenToViewport(fx, fy);
          this.emit(t, p.x, p.y, true);
        } else {
          this.emit(t, -1, -1, false);
        }
      }
    }
  }

  /**
   * Store the accumulated tracker details with the session. PATCHes run one after another and
   * each sends the latest state: PATCH replaces the whole `tracker` key, so an older request
   * finishing last must not overwrite newer details.
   */
  persist() {
    const id = this.sessionId();
    if (!id) return Promise.resolve();
    this.dirty = true;
    if (!this.persisting) {
      this.persisting = (async () => {
        while (this.dirty) {
          this.dirty = false;
          try {
            await api(`/api/sessions/${id}`, { method: 'PATCH', json: { source_info: { tracker: this.details.tracker } } });
          } catch (err) {
            console.warn('could not store tracker details with the session', err);
          }
        }
        this.persisting = null;
      })();
    }
    return this.persisting;
  }

  async stop() {
    this.closed = true;
    this.running = false;
    if (this.socket) this.socket.close(1000);
    // Tracker details still being stored must land before the session is finished.
    if (this.persisting) await this.persisting;
  }
}

registerSource(TrackerSource);
