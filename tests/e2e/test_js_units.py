"""Unit tests of the browser's pure modules (transform, windowing, samples, replay, stream), run in
headless Chromium on a page of the test server so the ES modules load exactly as in production."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.imaging import render_window
from tests.e2e.conftest import E2EServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(e2e_server: E2EServer, browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(f"{e2e_server.base_url}/login")
    yield pg
    context.close()


def js(page: Any, body: str, arg: Any = None) -> Any:
    """Run an async function body in the page; `arg` is available as `arg`."""
    return page.evaluate(f"async (arg) => {{ {body} }}", arg)


def test_transform_round_trip_and_zoom_about_cursor(page: Any) -> None:
    out = js(
        page,
        """
      const T = await import('/static/js/viewer/transform.js');
      const fit = T.fitView(1000, 500, 800, 600);
      const rect = {left: 30, top: 50, width: 800, height: 600};
      const under = T.canvasToImage(fit, 200, 100);
      let v = T.zoomAt(fit, 3.7, 200, 100);
      v = T.panBy(v, -55.5, 12.25);
      const probe = [[0, 0], [999.5, 499.5], [123.4, 432.1], [-20, 600]];
      const back = probe.map(([x, y]) => {
        const s = T.imageToScreen(v, rect, x, y);
        return T.screenToImage(v, rect, s.x, s.y);
      });
      const after = T.canvasToImage(T.zoomAt(fit, 3.7, 200, 100), 200, 100);
      return {fit, back, probe, under, after, onImage: [
        T.isOnImage(v, rect, 1000, 500, ...Object.values(T.imageToScreen(v, rect, under.x, under.y))),
        // zoomed out of the canvas
        T.isOnImage(v, rect, 1000, 500, ...Object.values(T.imageToScreen(v, rect, 500, 250))),
        T.isOnImage(fit, rect, 1000, 500, 30 + 400, 50 + 10),   // above the letterboxed image
        T.isOnImage(fit, rect, 1000, 500, 30 + 400, 50 + 300),
      ], clamped: T.zoomAt(fit, 1e9, 0, 0).zoom, rect: T.imageScreenRect(fit, rect, 1000, 500)};
    """,
    )
    assert out["fit"] == {"zoom": 0.8, "panX": 0, "panY": 100}
    for (px, py), got in zip(out["probe"], out["back"], strict=True):
        assert got["x"] == pytest.approx(px, abs=1e-9) and got["y"] == pytest.approx(py, abs=1e-9)
    assert out["after"]["x"] == pytest.approx(out["under"]["x"])
    assert out["after"]["y"] == pytest.approx(out["under"]["y"])
    assert out["onImage"] == [True, False, False, True]
    assert out["clamped"] == 64
    assert out["rect"] == {"left": 30, "top": 150, "width": 800, "height": 400}


@pytest.mark.parametrize(
    ("center", "width", "offset", "scale", "invert"),
    [
        (128, 256, 0, 1, False),
        (-600, 1500, -1024, 1, False),
        (40, 0.5, 0, 0.01, True),
        (30000, 9000, 0, 1, True),
    ],
)
def test_window_lut_matches_server_rendering(
    page: Any, center: float, width: float, offset: float, scale: float, invert: bool
) -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 4096, 500).astype(np.uint16)
    values[:3] = [0, 4095, 2048]
    expected = render_window(values.reshape(20, 25), offset, scale, center, width, invert=invert).ravel()
    got = js(
        page,
        """
      const W = await import('/static/js/viewer/windowing.js');
      const v = Uint16Array.from(arg.values);
      const lut = W.windowLut(W.maxValue(v), arg.offset, arg.scale, arg.center, arg.width, arg.invert);
      const rgba = W.applyLut(v, 1, lut, new Uint8ClampedArray(v.length * 4));
      return Array.from(rgba.filter((_, i) => i % 4 === 0));
    """,
        {
            "values": values.tolist(),
            "center": center,
            "width": width,
            "offset": offset,
            "scale": scale,
            "invert": invert,
        },
    )
    # Same DICOM LINEAR function; only exact .5 ties may round differently (numpy rounds to even).
    assert np.abs(np.asarray(got, dtype=int) - expected.astype(int)).max() <= 1


def test_parse_pixels_little_endian_and_channels(page: Any) -> None:
    out = js(
        page,
        """
      const W = await import('/static/js/viewer/windowing.js');
      const buf = new ArrayBuffer(12); const dv = new DataView(buf);
      [1, 258, 65535, 4, 5, 6].forEach((v, i) => dv.setUint16(2 * i, v, true));
      const h = new Headers({'X-Image-Width': '3', 'X-Image-Height': '2',
                             'X-Value-Offset': '-1024.0', 'X-Value-Scale': '0.5'});
      const p = W.parsePixels(buf, h);
      let err = null;
      try { W.parsePixels(new ArrayBuffer(10), h); } catch (e) { err = e.message; }
      return {values: Array.from(p.values), channels: p.channels, offset: p.offset, scale: p.scale, err};
    """,
    )
    assert out["values"] == [1, 258, 65535, 4, 5, 6]
    assert (out["channels"], out["offset"], out["scale"]) == (1, -1024.0, 0.5)
    assert out["err"] and "5 values" in out["err"]


def test_sample_columns_and_flags(page: Any) -> None:
    out = js(
        page,
        """
      const S = await import('/static/js/gaze/sample.js');
      const state = {
        view: {zoom: 2, panX: 10, panY: 20}, canvasRect: {left: 100, top: 50, width: 400, height: 300},
        imageW: 100, imageH: 80, wl: {center: 40, width: 400}, dpr: 1.5, visible: true, isEyeGaze: false,
      };
      const at = (x, y) => ({t: 0, x, y, valid: true});
      const on = S.buildSample(at(100 + 10 + 2 * 30.5, 50 + 20 + 2 * 7.25), state, 12.5);
      const off = S.buildSample(at(100 + 5, 50 + 5), {...state, visible: false, isEyeGaze: true}, 13);
      const zoomed = {...state, view: {zoom: 10, panX: -50, panY: -50}};
      const outsideCanvas = S.buildSample(at(90, 100), zoomed, 14);
      const invalid = S.buildSample(at(NaN, 3), state, 15);
      let err = null;
      try { S.buildSample(at(1, 1), {...state, dpr: NaN}, 1); } catch (e) { err = e.message; }
      return {on, off, outsideCanvas, invalid, err, columns: S.COLUMNS};
    """,
    )
    assert out["columns"][:6] == ["t_ms", "screen_x", "screen_y", "image_x", "image_y", "flags"]
    assert len(out["columns"]) == 18
    on = out["on"]
    assert on == [
        12.5,
        171,
        84.5,
        30.5,
        7.25,
        1 | 2 | 4,
        2,
        10,
        20,
        40,
        400,
        110,
        70,
        200,
        160,
        400,
        300,
        1.5,
    ]
    off = out["off"]
    assert off[5] == 1 | 8 and off[3] == pytest.approx(-2.5) and off[4] == pytest.approx(-7.5)
    # Inside the (zoomed) image but outside the canvas: not looking at the image.
    assert out["outsideCanvas"][5] & 2 == 0
    assert out["invalid"][1:6] == [-1, -1, -1, -1, 4]
    assert out["err"] and "dpr" in out["err"]


def test_replay_emits_each_point_once_with_scheduled_times(page: Any) -> None:
    out = js(
        page,
        """
      const R = await import('/static/js/gaze/replay.js');
      const sp = R.parseScanpath(
        {coords: 'image', points: [[0, 1, 2], [5, 3, 4], [5, null, 9], [40, 7, 8], [90, 9, 9]]});
      let zoom = 1;
      const toScreen = (x, y) => ({x: x * zoom, y: y * zoom});
      const src = new R.ReplaySource({scanpath: sp, rate: 2, tickMs: 4, toScreen});
      const got = [];
      src.onSample((s) => { got.push(s); zoom = 10; });
      const ended = new Promise((r) => src.addEventListener('end', r));
      await src.start();
      await ended;
      let bad = null;
      try { R.parseScanpath([[5, 1, 1], [4, 1, 1]]); } catch (e) { bad = e.message; }
      const rows = got.map((s) => [s.t - src.startedAt, s.x, s.y, s.valid]);
      return {got: rows, bad, kind: src.kind, eye: src.isEyeGaze};
    """,
    )
    # rate 2: scheduled at t/2; image points mapped through the transform current at emission.
    assert out["got"] == [
        [0, 1, 2, True],
        [2.5, 30, 40, True],
        [2.5, -1, -1, False],
        [20, 70, 80, True],
        [45, 90, 90, True],
    ]
    assert out["bad"] and "backwards" in out["bad"]
    assert (out["kind"], out["eye"]) == ("replay", False)


FAKE_SOCKET = (Path(__file__).parent / "js" / "fake_gaze_server.js").read_text()


def test_stream_resends_unacked_frames_after_a_cut_and_skips_stored_ones(page: Any) -> None:
    out = js(
        page,
        FAKE_SOCKET
        + """
      const { GazeStream } = await import('/static/js/stream.js');
      const { MemoryOutbox } = await import('/static/js/outbox.js');
      const outbox = new MemoryOutbox();
      const stream = new GazeStream(
        {sessionId: 7, outbox, fresh: true, frameMs: 10, maxFrameSamples: 4, WebSocketImpl: FakeSocket});
      await stream.open();
      await sleep(20);
      for (let i = 0; i < 8; i += 1) stream.push([i]);
      await stream.flush(); await sleep(20);
      const afterFirst = {pending: stream.pendingFrames, outbox: (await outbox.frames(7)).length};
      server.dropAcks = true;                      // frames reach the server, acks get lost
      for (let i = 8; i < 20; i += 1) stream.push([i]);
      await stream.flush(); await sleep(20);
      const held = stream.pendingFrames;
      server.sockets.at(-1).close(1006);           // the connection drops
      server.dropAcks = false;
      const drained = await stream.drain(5000);
      server.rejectSeq = 5;
      stream.push([99]); await stream.flush(); await sleep(30);
      return {afterFirst, held, drained, seqs: [...server.stored.keys()].sort((a, b) => a - b),
              sockets: server.sockets.length, received: server.received, rejected: stream.rejected,
              outboxLeft: (await outbox.frames(7)).length, meta: await outbox.getSession(7),
              ackModes: server.ackModes, ackMessages: server.ackMessages};
    """,
    )
    # The client asks for batched acks; frames sent together were acknowledged together.
    assert out["ackModes"] == ["batch", "batch"]
    assert out["ackMessages"] < out["received"]
    assert out["afterFirst"] == {"pending": 0, "outbox": 0}
    assert out["held"] == 3
    assert out["drained"] is True
    assert out["seqs"] == [0, 1, 2, 3, 4]
    # The three frames the server already held were not sent again after the reconnect.
    assert out["received"] == 5 and out["sockets"] == 2
    assert out["rejected"] == 1 and out["outboxLeft"] == 0
    assert out["meta"]["next_seq"] == 6


def test_stream_keeps_a_rate_limited_frame_and_resends_it_after_the_delay(page: Any) -> None:
    out = js(
        page,
        FAKE_SOCKET
        + """
      const { GazeStream } = await import('/static/js/stream.js');
      const { MemoryOutbox } = await import('/static/js/outbox.js');
      const outbox = new MemoryOutbox();
      const stream = new GazeStream(
        {sessionId: 9, outbox, fresh: true, frameMs: 10, maxFrameSamples: 2, WebSocketImpl: FakeSocket});
      await stream.open();
      await sleep(20);
      server.rateLimitSeq = 1;
      for (let i = 0; i < 6; i += 1) stream.push([i]);
      await stream.flush(); await sleep(15);
      const held = {pending: stream.pendingFrames, stored: [...server.stored.keys()].length};
      const drained = await stream.drain(3000);
      return {held, drained, seqs: [...server.stored.keys()].sort((a, b) => a - b),
              rejected: stream.rejected, outboxLeft: (await outbox.frames(9)).length};
    """,
    )
    # Held back for retry_after_ms (40 ms) instead of being dropped, then stored.
    assert out["held"]["pending"] >= 1
    assert out["drained"] is True
    assert out["seqs"] == [0, 1, 2]
    assert out["rejected"] == 0 and out["outboxLeft"] == 0


def test_a_held_frame_is_resent_even_when_the_retry_timer_fires_before_the_hold_ends(page: Any) -> None:
    out = js(
        page,
        FAKE_SOCKET
        + """
      const { GazeStream } = await import('/static/js/stream.js');
      const { MemoryOutbox } = await import('/static/js/outbox.js');
      // The page's clock runs 25 ms behind once the refusal is in: the retry timer fires while
      // performance.now() still says the hold is on, as a timer rounded down to whole ms can.
      const realNow = performance.now.bind(performance);
      let lag = 0;
      performance.now = () => realNow() - lag;
      const stream = new GazeStream(
        {sessionId: 10, outbox: new MemoryOutbox(), fresh: true, frameMs: 10, maxFrameSamples: 2,
         WebSocketImpl: FakeSocket});
      await stream.open();
      await sleep(20);
      server.rateLimitSeq = 0;
      stream.addEventListener('status', () => { if (stream.lastError) lag = 25; });
      for (let i = 0; i < 2; i += 1) stream.push([i]);
      const drained = await stream.drain(1500);
      return {drained, seqs: [...server.stored.keys()], error: stream.lastError};
    """,
    )
    assert out["error"].startswith("rate_limited")
    assert out["drained"] is True and out["seqs"] == [0]


def test_stream_resumes_numbering_from_the_server_without_local_state(page: Any) -> None:
    out = js(
        page,
        FAKE_SOCKET
        + """
      const { GazeStream, backoffMs } = await import('/static/js/stream.js');
      const { MemoryOutbox } = await import('/static/js/outbox.js');
      server.stored.set(0, 1); server.stored.set(1, 1); server.stored.set(4, 1);
      server.singleAcks = true;                    // a server that only sends one ack per frame
      const stream = new GazeStream(
        {sessionId: 8, outbox: new MemoryOutbox(), frameMs: 10, WebSocketImpl: FakeSocket});
      stream.push([1]);                            // held until the welcome says where numbering continues
      await stream.open();
      const drained = await stream.drain(3000);
      const delays = [0, 1, 5, 20].map((n) => [backoffMs(n, () => 0), backoffMs(n, () => 1)]);
      return {drained, seqs: [...server.stored.keys()].sort((a, b) => a - b), delays};
    """,
    )
    assert out["drained"] is True
    assert out["seqs"] == [0, 1, 4, 5]
    assert out["delays"] == [[125, 250], [250, 500], [4000, 8000], [5000, 10000]]


def test_idb_outbox_survives_a_reload(page: Any) -> None:
    js(
        page,
        """
      const { IdbOutbox } = await import('/static/js/outbox.js');
      const box = await IdbOutbox.open('mcgip-test-outbox');
      await box.dropSession(3);
      await box.putFrame({session_id: 3, seq: 0, samples: [[1]]}, {session_id: 3, next_seq: 1, t0: 5});
      await box.putFrame({session_id: 3, seq: 1, samples: [[2]]}, {session_id: 3, next_seq: 2, t0: 5});
      await box.deleteFrames(3, [0]);
    """,
    )
    page.reload()
    out = js(
        page,
        """
      const { IdbOutbox } = await import('/static/js/outbox.js');
      const box = await IdbOutbox.open('mcgip-test-outbox');
      const frames = await box.frames(3);
      return {frames, meta: await box.getSession(3), pending: await box.pendingSessions()};
    """,
    )
    assert [f["seq"] for f in out["frames"]] == [1]
    assert out["meta"] == {"session_id": 3, "next_seq": 2, "t0": 5}
    assert out["pending"] == [3]


def test_samples_to_path_sorts_and_marks_usable_samples(page: Any) -> None:
    out = js(
        page,
        """
      const P = await import('/static/js/review/playback.js');
      const cols = ['t_ms','screen_x','screen_y','image_x','image_y','flags'];
      const samples = [[120, 0, 0, 5, 6, 7], [100, 0, 0, 1, 2, 3], [110, 0, 0, -1, -1, 4]];
      const path = P.samplesToPath({columns: cols, samples});
      const pb = new P.Playback(path.duration);
      pb.setSpeed(4); pb.advance(3);
      const t1 = pb.time;
      pb.advance(100);
      return {t: Array.from(path.t), x: Array.from(path.x), ok: Array.from(path.ok),
              duration: path.duration, t1, end: pb.time, playing: pb.playing};
    """,
    )
    assert out["t"] == [0, 10, 20] and out["x"] == [1, -1, 5] and out["ok"] == [1, 0, 1]
    assert (out["duration"], out["t1"], out["end"], out["playing"]) == (20, 12, 20, False)


def test_mouse_source_samples_the_last_pointer_position_at_its_rate(page: Any) -> None:
    out = js(
        page,
        """
      const { MouseSource } = await import('/static/js/gaze/mouse.js');
      const src = new MouseSource({rateHz: 100});
      const got = [];
      src.onSample((s) => got.push(s));
      await src.start();
      await new Promise((r) => setTimeout(r, 60));
      const before = got.length;
      window.dispatchEvent(new PointerEvent('pointermove', {clientX: 40, clientY: 70}));
      await new Promise((r) => setTimeout(r, 120));
      await src.stop();
      const stopped = got.length;
      await new Promise((r) => setTimeout(r, 50));
      return {before, got: got.map((s) => [s.x, s.y, s.valid]), stopped, after: got.length,
              kind: src.kind, eye: src.isEyeGaze, info: src.info()};
    """,
    )
    got = out["got"]
    assert out["before"] >= 2 and all(not valid for _x, _y, valid in got[: out["before"]])
    moved = got[out["before"] :]
    # A still pointer keeps producing samples (dwell), all at the last position.
    assert len(moved) >= 5 and all(s == [40, 70, True] for s in moved)
    assert out["stopped"] == out["after"], "no samples after stop()"
    assert (out["kind"], out["eye"], out["info"]["rate_hz"]) == ("mouse", False, 100)


def test_annotation_overlay_draws_boxes_and_ellipses_at_image_positions(page: Any) -> None:
    out = js(
        page,
        """
      const O = await import('/static/js/viewer/overlays.js');
      const calls = [];
      const methods = ['save', 'restore', 'beginPath', 'stroke', 'rect', 'ellipse', 'fillText'];
      const ctx = new Proxy({}, {
        get: (_t, name) => methods.includes(name) ? (...a) => calls.push([name, ...a]) : undefined,
        set: () => true,
      });
      const viewer = {view: {zoom: 2, panX: 10, panY: 20}};
      const annotations = [
        {shape: 'box', label: 'right lung', x0: 5, y0: 6, x1: 25, y1: 46},
        {shape: 'ellipse', label: 'Consolidation', x0: 0, y0: 0, x1: 40, y1: 20},
      ];
      let visible = false;
      const draw = O.annotationOverlay(annotations, () => ({visible}));
      draw(ctx, viewer);
      const hidden = calls.length;
      visible = true;
      draw(ctx, viewer);
      return {hidden, calls: calls.filter((c) => ['rect', 'ellipse', 'fillText'].includes(c[0]))};
    """,
    )
    assert out["hidden"] == 0
    rect, label1, ellipse, label2 = out["calls"]
    # Image px -> canvas: pan + px x zoom.
    assert rect == ["rect", 20, 32, 40, 80]
    assert label1[:2] == ["fillText", "right lung"]
    assert ellipse[:5] == ["ellipse", 50, 40, 40, 20]
    assert label2[:2] == ["fillText", "Consolidation"]
