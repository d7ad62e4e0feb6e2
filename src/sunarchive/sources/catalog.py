"""Every source type a config can name. To add one: give its settings model a
``type: Literal["..."]`` tag and a ``build`` method (in ``sources/<type>/config.py`` or next
to the adapter, importing only pydantic at module level), import it here, and add it to
:data:`SourceConfig` — ``SOURCE_TAGS`` follows by itself."""

from __future__ import annotations

from typing import Annotated, Union, get_args

from pydantic import Field

from sunarchive.sources.config import SimulatorSource
from sunarchive.sources.goodwe.config import GoodWeSettings
from sunarchive.sources.hoymiles.config import HoymilesSettings
from sunarchive.sources.ina2xx.config import Ina2xxSettings
from sunarchive.sources.mqtt.config import MqttSettings
from sunarchive.sources.sunspec.config import SunSpecSettings
from sunarchive.sources.tcp.config import TcpSettings

#: One entry of ``Settings.sources``, told apart by its ``type``.
SourceConfig = Annotated[
    Union[  # noqa: UP007 - a runtime union pydantic can discriminate
        SimulatorSource,
        GoodWeSettings,
        HoymilesSettings,
        Ina2xxSettings,
        MqttSettings,
        SunSpecSettings,
        TcpSettings,
    ],
    Field(discriminator="type"),
]

SOURCE_TAGS: frozenset[str] = frozenset(
    get_args(model.model_fields["type"].annotation)[0]
    for model in get_args(get_args(SourceConfig)[0]) or (get_args(SourceConfig)[0],)
)
