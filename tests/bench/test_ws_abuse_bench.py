"""Smoke run of ``mcgip bench ws-abuse``: real server, real attackers; memory and refusals checked.

Latency ratios depend on the machine's load and are reported, not asserted, here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import ws_abuse


@pytest.mark.slow
def test_quick_ws_abuse_bench_reports_both_attacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = tmp_path / "ws-abuse.json"
    ws_abuse.main(["--quick", "--json", str(figures)])
    out = capsys.readouterr().out
    assert "ratio to the 50 MB target" in out and "ratio to the 3x target" in out
    result = json.loads(figures.read_text())
    invalid, flood = result["invalid"], result["flood"]
    # The attacker sent far more than the server may queue; memory stayed bounded.
    assert invalid["messages_sent"] > 10_000
    assert invalid["rss_growth_mb"] <= 50
    assert invalid["health_failures"] == 0 and flood["me_failures"] == 0
    # The flooder was refused with rate_limited, and still got frames through within its budget.
    assert flood["flood_rate_limited"] > 0 and flood["flood_acks"] > 0
