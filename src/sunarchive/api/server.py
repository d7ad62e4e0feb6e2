"""Serve the API with uvicorn on a background thread, next to the collector."""

from __future__ import annotations

import gc
import threading
import time

import uvicorn
from fastapi import FastAPI

from sunarchive.model import ConfigError

START_TIMEOUT_S = 10.0


class HttpServer:
    """uvicorn on a daemon thread; ``start`` fails clearly when the port cannot be bound."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.host, self.port = host, port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sunarchive-http",
                                        daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"cannot serve HTTP on {self.host}:{self.port} (is the port "
                                  "in use? choose another with --http-port, or --no-http)")
            time.sleep(0.02)
        # Everything built so far (store, profiles, libraries) lives as long as the server:
        # keep it out of the collector's scans, which otherwise cost milliseconds per
        # request that builds many small objects (the rows of a JSON answer).
        gc.freeze()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5.0)
        gc.unfreeze()
