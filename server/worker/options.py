"""Worker tuning knobs, read from ``MCGIP_WORKER_*`` environment variables (all optional)."""

from __future__ import annotations

import shlex

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.jobs.kinds import HEAVY_KINDS, IO_KINDS, LIGHT_KINDS


class WorkerOptions(BaseSettings):
    """How a worker polls, beats and launches training."""

    model_config = SettingsConfigDict(env_prefix="MCGIP_WORKER_", extra="ignore")

    heartbeat_s: float = Field(1.0, gt=0, description="seconds between job heartbeats/progress writes")
    stale_after_s: float = Field(
        30.0, gt=0, description="requeue a running job after this long without a heartbeat"
    )
    poll_s: float = Field(0.5, gt=0, description="seconds between queue polls when idle")
    schedule_every_s: float = Field(2.0, gt=0, description="seconds between schedule checks")
    lanes: str = Field(
        "light,heavy,io",
        description="which lanes this worker runs: any of light, heavy, io (comma-separated)",
    )
    python: str | None = Field(None, description="interpreter for trainer subprocesses (default: this one)")
    train_command: str | None = Field(
        None, description="replaces `python -m trainer.api` for training subprocesses (shell words)"
    )
    gpus: int | None = Field(
        None, ge=0, description="GPUs to use for one training job (default: all visible)"
    )

    def lane_kinds(self) -> dict[str, frozenset[str]]:
        """Lane name -> kinds it claims."""
        wanted = {part.strip() for part in self.lanes.split(",") if part.strip()}
        lanes = {"light": LIGHT_KINDS, "heavy": HEAVY_KINDS, "io": IO_KINDS}
        unknown = wanted - set(lanes)
        if unknown:
            raise ValueError(f"MCGIP_WORKER_LANES: unknown lane(s) {sorted(unknown)}")
        return {name: kinds for name, kinds in lanes.items() if name in wanted}

    def trainer_command(self, python: str) -> list[str]:
        """The argv prefix that runs the trainer CLI."""
        if self.train_command:
            return shlex.split(self.train_command)
        return [self.python or python, "-m", "trainer.api"]
