// A scripted stand-in for the server side of /ws/gaze, prepended to stream unit tests run in the
// page: it stores frames by seq, answers hello with welcome, and acks unless told not to. A hello
// asking for `acks: 'batch'` gets one `acks` message per tick (like one per server commit), unless
// `singleAcks` plays a server that only knows single acks.
class FakeServer {
  constructor() {
    this.stored = new Map();
    this.ackModes = []; // what each hello asked for
    this.singleAcks = false;
    this.ackMessages = 0;
    this.sockets = [];
    this.dropAcks = false;
    this.rejectSeq = null;
    this.rateLimitSeq = null; // refused once with rate_limited, then taken
    this.received = 0;
  }
}
const server = new FakeServer();

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    server.sockets.push(this);
    setTimeout(() => { this.readyState = 1; if (this.onopen) this.onopen(); }, 1);
  }

  send(text) {
    const m = JSON.parse(text);
    const reply = (o) => setTimeout(() => {
      if (this.readyState === 1) this.onmessage({ data: JSON.stringify(o) });
    }, 1);
    if (m.type === 'hello') {
      server.ackModes.push(m.acks ?? 'each');
      this.batch = m.acks === 'batch' && !server.singleAcks;
      const seqs = [...server.stored.keys()].sort((a, b) => a - b);
      let through = -1;
      while (server.stored.has(through + 1)) through += 1;
      reply({
        type: 'welcome', session_id: m.session_id, acked_through: through,
        acked_above: seqs.filter((s) => s > through),
      });
    } else if (m.type === 'frame') {
      if (m.seq === server.rejectSeq) {
        reply({ type: 'error', seq: m.seq, code: 'bad_sample', detail: 'rejected by the test' });
        return;
      }
      if (m.seq === server.rateLimitSeq) {
        server.rateLimitSeq = null;
        reply({ type: 'error', seq: m.seq, code: 'rate_limited', detail: 'over budget', retry_after_ms: 40 });
        return;
      }
      if (!server.stored.has(m.seq)) server.stored.set(m.seq, m.samples.length);
      server.received += 1;
      if (server.dropAcks) return;
      if (!this.batch) {
        server.ackMessages += 1;
        reply({ type: 'ack', seq: m.seq });
        return;
      }
      if (!this.batched) {
        this.batched = [];
        setTimeout(() => {
          const seqs = this.batched;
          this.batched = null;
          server.ackMessages += 1;
          if (this.readyState === 1) this.onmessage({ data: JSON.stringify({ type: 'acks', seqs }) });
        }, 1);
      }
      this.batched.push(m.seq);
    }
  }

  close(code = 1000) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => { if (this.onclose) this.onclose({ code }); }, 1);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
