"""Settings of a ``type: hoymiles`` source (a Hoymiles DTU polled with ``hoymiles-wifi``).

Imports only pydantic; ``build`` imports the library-based poller lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from sunarchive.sources.config import MAX_INTERVAL_S, MAX_TIMEOUT_S, PolledSourceSettings

if TYPE_CHECKING:
    from sunarchive.sources.base import Source
    from sunarchive.sources.running import SourceContext

MIN_POLL_INTERVAL_S = 35.0
"""The safe minimum between polls of a DTU, in seconds. ``hoymiles-wifi`` only spaces single
requests by 2 s and has no interval constant; DTUs that are asked more often than about every
35 s drop their cloud connection or stop answering (the Home Assistant integration's
default), so faster polling needs ``force_poll_interval``."""


class HoymilesSettings(PolledSourceSettings):
    """A ``sources`` entry of ``type: hoymiles``: poll a Hoymiles DTU (DTU-Pro, DTU-Lite,
    DTU-WLite, HMS-…W with built-in DTU) into the ``dtu``, ``inverter`` and ``port``
    measurements."""

    type: Literal["hoymiles"] = Field(default="hoymiles", description="Source type.")
    host: str = Field(min_length=1, description="DTU host name or address.")
    port: int = Field(default=10081, ge=1, le=65535, description="DTU TCP port.")
    dtu_name: str | None = Field(default=None, description="`dtu_name` tag of every row; "
                                 "unset = the source name.")
    poll_interval_s: float = Field(
        default=MIN_POLL_INTERVAL_S, gt=0, le=MAX_INTERVAL_S,
        description=f"Seconds between polls; at least {MIN_POLL_INTERVAL_S:g} unless "
                    "`force_poll_interval` is set.")
    force_poll_interval: bool = Field(
        default=False, description="Allow a `poll_interval_s` below the safe minimum of "
        f"{MIN_POLL_INTERVAL_S:g} s (the DTU may stop answering or lose its cloud link).")
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_S,
                             description="Seconds one request to the DTU "
                             "may take (connect, and again for the answer).")
    backoff_min_s: float = Field(default=35.0, gt=0, le=MAX_INTERVAL_S,
                                 description="First wait after a failed "
                                 "poll; doubles on each further failure.")
    backoff_max_s: float = Field(default=300.0, gt=0, le=MAX_INTERVAL_S,
                                 description="Longest wait between "
                                 "attempts while the DTU does not answer.")

    @model_validator(mode="after")
    def _safe_interval(self) -> HoymilesSettings:
        if self.poll_interval_s < MIN_POLL_INTERVAL_S and not self.force_poll_interval:
            raise ValueError(
                f"poll_interval_s: {self.poll_interval_s:g} s is faster than the DTU's safe "
                f"minimum of {MIN_POLL_INTERVAL_S:g} s; set force_poll_interval: true to "
                "poll faster anyway")
        return self

    @property
    def tag_dtu_name(self) -> str:
        """The ``dtu_name`` tag value."""
        return self.dtu_name or self.name

    def build(self, context: SourceContext) -> Source:
        from sunarchive.sources.hoymiles.poller import HoymilesPoller
        from sunarchive.sources.running import PolledSource, SourceStatus

        poller = HoymilesPoller(self.host, self.port, self.tag_dtu_name)
        return PolledSource(self.name, poller, self,
                            SourceStatus(self.name, "hoymiles", context.events, "dtu"))
