// Lossless gaze streaming over WebSocket /ws/gaze (protocol: docs/gaze-protocol.md).
//
// Samples are batched into frames with a per-session sequence number. Each frame is written to the
// durable outbox *before* it is sent and removed only when the server acknowledges it (which it
// does after committing it), so a dropped socket, a reload or a crash loses no frame that was cut.
// After every (re)connect the client says hello, learns which seqs the server holds, and resends
// the rest; the server treats a duplicate seq as a no-op, so resending is always safe.

const FATAL_CODES = new Set(['session_closed', 'unknown_session', 'forbidden', 'no_hello']);
const FATAL_CLOSE = new Set([4401, 4403, 4404]);
const GONE_CODES = new Set(['session_closed', 'unknown_session']);
// Not stored now, but the server will take the frame later (over the socket's budget, or overload).
const RETRY_CODES = new Set(['rate_limited', 'unavailable']);

export function gazeSocketUrl(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws/gaze`;
}

/** Reconnect delay for the n-th consecutive failure: 250 ms doubling to 10 s, with jitter. */
export function backoffMs(attempt, random = Math.random) {
  const base = Math.min(10000, 250 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.5 + 0.5 * random()));
}

export class GazeStream extends EventTarget {
  /**
   * @param {object} o
   * @param {number} o.sessionId
   * @param {object} o.outbox        IdbOutbox or MemoryOutbox
   * @param {boolean} [o.fresh]      a session created just now: seqs start at 0
   * @param {string} [o.url]
   * @param {number} [o.frameMs]     how often the sample batch is cut into a frame
   * @param {number} [o.maxFrameSamples]
   * @param {number} [o.maxInFlight] frames sent but not yet acknowledged
   * @param {number} [o.stallMs]     reconnect when frames wait this long without any message
   */
  constructor(o) {
    super();
    this.sessionId = o.sessionId;
    this.outbox = o.outbox;
    this.fresh = Boolean(o.fresh);
    this.url = o.url ?? gazeSocketUrl();
    this.frameMs = o.frameMs ?? 100;
    this.maxFrameSamples = Math.min(o.maxFrameSamples ?? 500, 2000);
    this.maxInFlight = o.maxInFlight ?? 128;
    this.stallMs = o.stallMs ?? 10000;
    this.WebSocketImpl = o.WebSocketImpl ?? WebSocket;
    this.batch = [];
    this.pending = new Map(); // seq -> frame, in the outbox and not acknowledged
    this.inFlight = new Set();
    this.nextSeq = null; // unknown until the outbox or the server's welcome tells us
    this.meta = null;
    this.ws = null;
    this.welcomed = false;
    this.attempt = 0;
    this.closed = false;
    this.state = 'connecting';
    this.lastError = null;
    this.rejected = 0;
    this.acked = 0;
    this.chain = Promise.resolve();
    this.lastMessageAt = 0;
    this.fatalCode = null;
    this.holdUntil = 0; // after rate_limited / unavailable: send nothing before this time
    this.retryTimer = null;
  }

  /** Load the outbox state and connect. Resolves once frames can be cut (seq known) or on failure. */
  async open() {
    const meta = await this.outbox.getSession(this.sessionId);
    if (meta) {
      this.meta = meta;
      this.nextSeq = meta.next_seq;
    } else if (this.fresh) {
      this.meta = { session_id: this.sessionId, next_seq: 0, t0: performance.timeOrigin + performance.now() };
      this.nextSeq = 0;
      await this.outbox.putSession(this.meta);
    }
    for (const frame of await this.outbox.frames(this.sessionId)) this.pending.set(frame.seq, frame);
    this.timer = setInterval(() => this.tick(), this.frameMs);
    this.onOnline = () => { if (!this.ws && !this.closed) this.connect(); };
    window.addEventListener('online', this.onOnline);
    this.connect();
    this.emitStatus();
  }

  /** Session clock origin (epoch ms) if this browser started or resumed the session before. */
  get t0() { return this.meta ? this.meta.t0 : null; }

  /** Record the clock origin for a session resumed without outbox state. */
  async setT0(t0) {
    if (this.meta) return;
    this.meta = { session_id: this.sessionId, next_seq: this.nextSeq ?? 0, t0 };
    if (this.nextSeq !== null) await this.outbox.putSession(this.meta);
  }

  push(row) {
    this.batch.push(row);
    if (this.batch.length >= this.maxFrameSamples) this.flush();
  }

  /** Cut the batch into frames now (serialised with other outbox writes). */
  flush() {
    this.chain = this.chain.then(() => this.cut()).catch((err) => this.fail(err));
    return this.chain;
  }

  async cut() {
    while (this.nextSeq !== null && this.batch.length) {
      const samples = this.batch.splice(0, this.maxFrameSamples);
      const seq = this.nextSeq;
      this.nextSeq += 1;
      const frame = { session_id: this.sessionId, seq, samples, created: Date.now() };
      this.meta = { ...(this.meta ?? { t0: null }), session_id: this.sessionId, next_seq: this.nextSeq };
      await this.outbox.putFrame(frame, this.meta);
      this.pending.set(seq, frame);
      this.pump();
    }
    this.emitStatus();
  }

  tick() {
    if (this.batch.length) this.flush();
    // A socket that takes frames but answers nothing is as good as dead (half-open TCP).
    if (this.ws && this.inFlight.size && performance.now() - this.lastMessageAt > this.stallMs) {
      this.ws.close(4000, 'no acknowledgement');
    }
  }

  connect() {
    if (this.closed) return;
    this.setState('connecting');
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url);
    } catch (err) {
      this.lastError = String(err);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    ws.onopen = () => {
      this.lastMessageAt = performance.now();
      // One `acks` message per server commit instead of one `ack` per frame; a server that does
      // not know the option sends single acks, which are handled as well.
      ws.send(JSON.stringify({ type: 'hello', session_id: this.sessionId, acks: 'batch' }));
    };
    ws.onmessage = (event) => this.onMessage(event.data);
    ws.onclose = (event) => this.onClose(ws, event);
    ws.onerror = () => { /* onclose follows and decides */ };
  }

  onMessage(data) {
    this.lastMessageAt = performance.now();
    let msg;
    try { msg = JSON.parse(data); } catch (_) { return; }
    if (msg.type === 'welcome') this.onWelcome(msg);
    else if (msg.type === 'acks' && Array.isArray(msg.seqs)) this.onAck(msg.seqs);
    else if (msg.type === 'ack') this.onAck([msg.seq]);
    else if (msg.type === 'error') this.onError(msg);
  }

  onWelcome(msg) {
    this.welcomed = true;
    this.attempt = 0;
    this.inFlight.clear();
    const through = Number.isInteger(msg.acked_through) ? msg.acked_through : -1;
    const above = Array.isArray(msg.acked_above) ? msg.acked_above : [];
    const stored = [...this.pending.keys()].filter((seq) => seq <= through || above.includes(seq));
    this.onAck(stored, false);
    const serverMax = Math.max(through, ...above);
    if (this.nextSeq === null || this.nextSeq <= serverMax) {
      // Resumed without outbox state (another browser, cleared storage): continue after the
      // highest seq anyone stored so nothing is overwritten-as-duplicate.
      const localMax = Math.max(-1, ...this.pending.keys());
      this.nextSeq = Math.max(serverMax, localMax) + 1;
      this.meta = { ...(this.meta ?? { t0: null }), session_id: this.sessionId, next_seq: this.nextSeq };
      this.outbox.putSession(this.meta);
    }
    this.setState('connected');
    this.pump();
    this.flush();
  }

  onAck(seqs, pump = true) {
    const known = seqs.filter((seq) => this.pending.has(seq));
    for (const seq of known) {
      this.pending.delete(seq);
      this.inFlight.delete(seq);
    }
    this.acked += known.length;
    if (known.length) {
      this.chain = this.chain.then(() => this.outbox.deleteFrames(this.sessionId, known)).catch((err) => this.fail(err));
    }
    if (pump) this.pump();
    this.emitStatus();
  }

  onError(msg) {
    this.lastError = `${msg.code}: ${msg.detail ?? ''}`;
    if (FATAL_CODES.has(msg.code)) {
      this.fatal(msg.code, msg.code);
      return;
    }
    if (RETRY_CODES.has(msg.code) && Number.isInteger(msg.seq) && this.pending.has(msg.seq)) {
      this.inFlight.delete(msg.seq);
      const delay = Number.isFinite(msg.retry_after_ms) ? Math.max(0, msg.retry_after_ms) : 1000;
      this.holdUntil = Math.max(this.holdUntil, performance.now() + delay);
      this.armRetryPump();
      this.emitStatus();
      return;
    }
    if (Number.isInteger(msg.seq) && this.pending.has(msg.seq)) {
      // The server will never take this frame; keeping it would resend it forever.
      console.error('gaze frame rejected', msg);
      this.rejected += 1;
      this.onAck([msg.seq]);
      this.acked -= 1;
    }
    this.emitStatus();
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.welcomed = false;
    this.inFlight.clear();
    if (this.closed) return;
    if (FATAL_CLOSE.has(event.code)) {
      this.fatal(`closed ${event.code}${event.reason ? `: ${event.reason}` : ''}`, event.code === 4404 ? 'unknown_session' : `close_${event.code}`);
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.setState('offline');
    const delay = backoffMs(this.attempt);
    this.attempt += 1;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Send pending frames in seq order, at most maxInFlight unacknowledged. */
  pump() {
    if (!this.ws || !this.welcomed || this.ws.readyState !== 1) return;
    if (performance.now() < this.holdUntil) {
      this.armRetryPump();
      return;
    }
    const seqs = [...this.pending.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      if (this.inFlight.size >= this.maxInFlight) break;
      if (this.inFlight.has(seq)) continue;
      const frame = this.pending.get(seq);
      if (this.inFlight.size === 0) this.lastMessageAt = performance.now();
      this.ws.send(JSON.stringify({ type: 'frame', seq, samples: frame.samples }));
      this.inFlight.add(seq);
    }
  }

  /** Pump again once the hold is over. A timer can fire a fraction of a millisecond before
   * `holdUntil` (delays are whole milliseconds), so a pump that finds the hold still on re-arms it
   * instead of leaving the held frames with nothing to send them. */
  armRetryPump() {
    clearTimeout(this.retryTimer);
    const wait = Math.ceil(Math.max(0, this.holdUntil - performance.now())) + 1;
    this.retryTimer = setTimeout(() => this.pump(), wait);
  }

  /** Frames (and batched samples) not yet acknowledged. */
  get pendingFrames() { return this.pending.size; }

  get pendingSamples() {
    let n = this.batch.length;
    for (const f of this.pending.values()) n += f.samples.length;
    return n;
  }

  /** Cut the batch and wait until the server holds everything; false on timeout or failure. */
  async drain(timeoutMs = 15000) {
    await this.flush();
    if (this.isDrained()) return true;
    return new Promise((resolve) => {
      const stop = setTimeout(() => { this.removeEventListener('status', check); resolve(false); }, timeoutMs);
      const check = () => {
        if (this.isDrained() || this.state === 'failed') {
          clearTimeout(stop);
          this.removeEventListener('status', check);
          resolve(this.isDrained());
        }
      };
      this.addEventListener('status', check);
    });
  }

  isDrained() {
    return this.nextSeq !== null && this.batch.length === 0 && this.pending.size === 0;
  }

  /** Stop for good (the frames left in the outbox stay there for a later page). */
  close() {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.reconnectTimer);
    window.removeEventListener('online', this.onOnline);
    if (this.ws) this.ws.close(1000, 'done');
    this.ws = null;
    this.setState('closed');
  }

  fatal(reason, code) {
    // The first cause wins: an error frame is usually followed by its close code.
    if (this.fatalCode) return;
    this.fatalCode = code;
    this.lastError = reason;
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.reconnectTimer);
    if (this.ws) this.ws.close(1000, 'fatal');
    this.ws = null;
    this.setState('failed');
  }

  fail(err) {
    console.error('gaze outbox', err);
    this.lastError = String(err);
    this.emitStatus();
  }

  setState(state) {
    this.state = state;
    this.emitStatus();
  }

  status() {
    return {
      state: this.state,
      pendingFrames: this.pending.size,
      batched: this.batch.length,
      acked: this.acked,
      rejected: this.rejected,
      durable: this.outbox.durable,
      lastError: this.lastError,
    };
  }

  emitStatus() {
    this.dispatchEvent(new CustomEvent('status', { detail: this.status() }));
  }
}

/**
 * Deliver frames other pages left behind (a tab closed while offline, a case left before its
 * frames were acknowledged). Each stream closes itself once its session's outbox is empty.
 */
export async function drainLeftovers(outbox, exceptSessionId, options = {}) {
  const ids = (await outbox.pendingSessions()).filter((id) => id !== exceptSessionId);
  const streams = [];
  for (const sessionId of ids) {
    const stream = new GazeStream({ ...options, sessionId, outbox });
    stream.addEventListener('status', () => {
      if (stream.isDrained()) stream.close();
      // Only a session the server will never accept frames for is given up; a frame refused
      // for this user (another account signed in on this browser) waits for its owner.
      if (stream.state === 'failed' && GONE_CODES.has(stream.fatalCode)) outbox.dropSession(sessionId);
    });
    await stream.open();
    streams.push(stream);
  }
  return streams;
}
