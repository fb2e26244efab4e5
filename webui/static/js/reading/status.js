// The stream status indicator: "connected" or "buffering N frames", with the state as data-state.

export function bindStreamStatus(stream, node) {
  const show = (s) => {
    node.dataset.state = s.state;
    node.dataset.pending = String(s.pendingFrames);
    let text;
    if (s.state === 'failed') text = `stopped: ${s.lastError}`;
    else if (s.state === 'connected' && s.pendingFrames <= 2) text = 'connected';
    else if (s.state === 'connected') text = `connected, sending ${s.pendingFrames} frames`;
    else if (s.state === 'closed') text = 'closed';
    else text = `buffering ${s.pendingFrames} frame${s.pendingFrames === 1 ? '' : 's'} (${s.state === 'offline' ? 'reconnecting' : 'connecting'})`;
    if (!s.durable) text += ' · not saved across reloads';
    if (s.rejected) text += ` · ${s.rejected} rejected`;
    node.textContent = text;
    node.title = s.lastError || '';
  };
  stream.addEventListener('status', (e) => show(e.detail));
  show(stream.status());
}
