"""The trainer subprocess contract: requests survive the command line, every line the trainer writes
is an event of the contract, and the contract module stays torch-free."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from trainer.api import _parser, evaluate_request, train_request
from trainer.callbacks import JsonLinesCallback, Progress
from trainer.contract import (
    CheckpointEvent,
    DoneEvent,
    EvaluateEvent,
    EvaluateRequest,
    Exported,
    ExportFailed,
    ExportRequest,
    ProgressEvent,
    RunEnd,
    RunStart,
    TrainOutputs,
    TrainRequest,
    parse_event,
)


def test_requests_round_trip_through_the_trainer_command_line(tmp_path: Path) -> None:
    for request in (
        TrainRequest(config=tmp_path / "c.json", snapshot=tmp_path / "s.json", out=tmp_path / "out"),
        TrainRequest(
            config=tmp_path / "c.json",
            snapshot=tmp_path / "s.json",
            out=tmp_path / "out",
            resume=False,
            previous=tmp_path / "prev.pt",
            progress=tmp_path / "p.jsonl",
        ),
    ):
        assert train_request(_parser().parse_args(request.args())) == request
    evaluate = EvaluateRequest(
        snapshot=tmp_path / "s.json",
        encoders={"v1": tmp_path / "a.pt", "v2": tmp_path / "b=c.pt"},
        config=tmp_path / "c.json",
        out=tmp_path / "m.json",
    )
    assert evaluate_request(_parser().parse_args(evaluate.args())) == evaluate
    export = ExportRequest(
        checkpoint=tmp_path / "e.pt", targets=[("onnx", tmp_path / "e.onnx"), ("card", tmp_path / "c")]
    )
    parsed = _parser().parse_args(export.args())
    assert parsed.checkpoint == export.checkpoint
    assert list(zip(parsed.format, parsed.out, strict=True)) == export.targets


def test_every_callback_line_is_a_contract_event(tmp_path: Path) -> None:
    stream = io.StringIO()
    sink = JsonLinesCallback(stream)
    sink.on_run_start("mcgip", 10)
    sink.on_progress(Progress("mcgip", 5, 10, 0, 1.5, 0.01, 2.0, 100.0, 3.0))
    sink.on_checkpoint("mcgip", 5, tmp_path / "step-00000005.pt")
    sink.on_run_end("mcgip", {"steps": 10, "seconds": 1.0})
    sink.on_event("evaluate", {"models": ["mcgip", "baseline"]})
    sink.on_event("done", {"encoder": "x/encoder.pt", "metrics": {"verdict": "cannot tell"}})
    events = [parse_event(line) for line in stream.getvalue().splitlines()]
    assert [type(e) for e in events] == [
        RunStart,
        ProgressEvent,
        CheckpointEvent,
        RunEnd,
        EvaluateEvent,
        DoneEvent,
    ]
    progress = events[1]
    assert isinstance(progress, ProgressEvent) and (progress.step, progress.loss, progress.eta_s) == (
        5,
        1.5,
        3.0,
    )
    run_end = events[3]
    assert isinstance(run_end, RunEnd) and run_end.model_dump()["steps"] == 10  # extra members are kept


def test_export_lines_and_other_output() -> None:
    for event in (Exported(format="onnx", path="/x.onnx"), ExportFailed(format="onnx", error="boom")):
        assert parse_event(event.line()) == event
    assert parse_event("2026-12-03 INFO loading snapshot") is None
    assert parse_event('{"event": "something-new", "x": 1}') is None
    assert parse_event('{"event": "progress", "run": "mcgip"}') is None  # incomplete: not an event
    assert TrainOutputs(out=Path("/o")).encoder("baseline") == Path("/o/baseline/encoder.pt")


def test_contract_does_not_import_torch() -> None:
    code = "import sys, trainer.contract; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
