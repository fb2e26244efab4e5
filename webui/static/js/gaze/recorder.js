// Connects a gaze source to the stream: each screen sample becomes an 18-column row with the
// viewer state of that moment and a session-relative timestamp.

import { buildSample } from './sample.js';

/** Session clock: ms since the session's origin t0 (epoch ms), never decreasing. */
export class SessionClock {
  constructor(t0) {
    this.t0 = t0;
    this.last = 0;
  }

  /** @param {number} pageT  performance.now()-based time of this page */
  at(pageT) {
    // timeOrigin + now is the page clock in epoch ms, so the clock continues across reloads.
    // A wall-clock step backwards between pages cannot make time run backwards or negative.
    const t = performance.timeOrigin + pageT - this.t0;
    this.last = Math.max(this.last, t, 0);
    return this.last;
  }
}

export class Recorder {
  /**
   * @param {{source, viewer, stream, clock: SessionClock}} o
   */
  constructor({ source, viewer, stream, clock }) {
    this.source = source;
    this.viewer = viewer;
    this.stream = stream;
    this.clock = clock;
    this.count = 0;
    this.unsubscribe = source.onSample((s) => this.record(s));
  }

  record(s) {
    const state = {
      ...this.viewer.sampleState(),
      visible: document.visibilityState === 'visible',
      isEyeGaze: this.source.isEyeGaze,
    };
    this.stream.push(buildSample(s, state, this.clock.at(s.t)));
    this.count += 1;
  }

  detach() {
    this.unsubscribe();
  }
}
