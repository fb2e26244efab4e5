// Durable outbox of gaze frames not yet acknowledged by the server (IndexedDB), so frames
// survive a dropped socket, a reload or a closed tab and are resent later.
//
// Stores:
//   frames    key [session_id, seq]  {session_id, seq, samples, created}
//   sessions  key session_id          {session_id, next_seq, t0}  (t0 = session clock origin,
//             epoch ms from performance.timeOrigin + performance.now())
// A frame and its session's next_seq are written in one transaction, so a reload never reuses a
// sequence number.

const DB_NAME = 'mcgip-gaze-outbox';
const DB_VERSION = 1;

function promisify(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('outbox transaction aborted'));
  });
}

export class IdbOutbox {
  constructor(db) {
    this.db = db;
    this.durable = true;
  }

  static async open(name = DB_NAME) {
    const request = indexedDB.open(name, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains('frames')) db.createObjectStore('frames', { keyPath: ['session_id', 'seq'] });
      if (!db.objectStoreNames.contains('sessions')) db.createObjectStore('sessions', { keyPath: 'session_id' });
    };
    return new IdbOutbox(await promisify(request));
  }

  async getSession(sessionId) {
    const tx = this.db.transaction('sessions', 'readonly');
    return (await promisify(tx.objectStore('sessions').get(sessionId))) ?? null;
  }

  async putSession(meta) {
    const tx = this.db.transaction('sessions', 'readwrite');
    tx.objectStore('sessions').put(meta);
    await done(tx);
  }

  /** Store a frame and advance the session's next_seq atomically. */
  async putFrame(frame, meta) {
    const tx = this.db.transaction(['frames', 'sessions'], 'readwrite');
    tx.objectStore('frames').put(frame);
    tx.objectStore('sessions').put(meta);
    await done(tx);
  }

  async deleteFrames(sessionId, seqs) {
    if (!seqs.length) return;
    const tx = this.db.transaction('frames', 'readwrite');
    const store = tx.objectStore('frames');
    for (const seq of seqs) store.delete([sessionId, seq]);
    await done(tx);
  }

  /** Frames of one session in seq order. */
  async frames(sessionId) {
    const tx = this.db.transaction('frames', 'readonly');
    const range = IDBKeyRange.bound([sessionId, -Infinity], [sessionId, Infinity]);
    return promisify(tx.objectStore('frames').getAll(range));
  }

  /** Session ids that still have frames waiting. */
  async pendingSessions() {
    const tx = this.db.transaction('frames', 'readonly');
    const keys = await promisify(tx.objectStore('frames').getAllKeys());
    return [...new Set(keys.map((k) => k[0]))];
  }

  /** Forget a session entirely (after it is finished, or the server refused it for good). */
  async dropSession(sessionId) {
    const tx = this.db.transaction(['frames', 'sessions'], 'readwrite');
    tx.objectStore('frames').delete(IDBKeyRange.bound([sessionId, -Infinity], [sessionId, Infinity]));
    tx.objectStore('sessions').delete(sessionId);
    await done(tx);
  }
}

/** Same interface kept in memory: used when IndexedDB is unavailable (frames then die with the tab). */
export class MemoryOutbox {
  constructor() {
    this.durable = false;
    this.meta = new Map();
    this.store = new Map();
  }

  async getSession(sessionId) { return this.meta.get(sessionId) ?? null; }

  async putSession(meta) { this.meta.set(meta.session_id, { ...meta }); }

  async putFrame(frame, meta) {
    this.store.set(`${frame.session_id}:${frame.seq}`, frame);
    this.meta.set(meta.session_id, { ...meta });
  }

  async deleteFrames(sessionId, seqs) {
    for (const seq of seqs) this.store.delete(`${sessionId}:${seq}`);
  }

  async frames(sessionId) {
    return [...this.store.values()].filter((f) => f.session_id === sessionId).sort((a, b) => a.seq - b.seq);
  }

  async pendingSessions() {
    return [...new Set([...this.store.values()].map((f) => f.session_id))];
  }

  async dropSession(sessionId) {
    for (const f of await this.frames(sessionId)) this.store.delete(`${sessionId}:${f.seq}`);
    this.meta.delete(sessionId);
  }
}

let shared = null;

/** The page's outbox: IndexedDB when it works, memory otherwise. */
export function openOutbox() {
  if (!shared) {
    shared = IdbOutbox.open().catch(() => new MemoryOutbox());
  }
  return shared;
}
