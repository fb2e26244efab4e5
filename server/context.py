"""Per-process application state shared by routes: settings, database, token codec, limiter."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.auth.ratelimit import LoginRateLimiter
from server.auth.tokens import TokenCodec
from server.db import Database
from server.registry import embedding
from server.registry.batcher import MicroBatcher
from server.registry.pool import PredictPool
from server.registry.predict_cache import TensorCache
from server.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    tokens: TokenCodec
    login_limiter: LoginRateLimiter
    predict_pool: PredictPool = field(default_factory=PredictPool)
    predict_tensors: TensorCache = field(default_factory=lambda: TensorCache(64 << 20))
    predict_batcher: MicroBatcher = field(default_factory=MicroBatcher)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        embedding.configure_sessions(nice=settings.predict_nice)
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            tokens=TokenCodec(settings.secret_key, settings.access_token_ttl_s),
            login_limiter=LoginRateLimiter(settings.login_attempts, settings.login_window_s),
            predict_pool=PredictPool(
                settings.predict_workers,
                settings.predict_queue,
                settings.predict_nice,
                processes=settings.predict_processes,
                intra_op_threads=settings.predict_threads,
            ),
            predict_tensors=TensorCache(settings.predict_cache_mb << 20),
            predict_batcher=MicroBatcher(settings.predict_micro_batch),
        )
