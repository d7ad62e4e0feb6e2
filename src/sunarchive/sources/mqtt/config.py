"""Settings of a ``type: mqtt`` source: the broker, the topic layout and generic mappings.

Imports only pydantic (and the pure topic-pattern checks); ``build`` imports the aiomqtt
client lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from sunarchive.sources.config import MAX_INTERVAL_S, MAX_TIMEOUT_S, STRICT, SourceSettings

if TYPE_CHECKING:
    from sunarchive.sources.base import Source
    from sunarchive.sources.running import SourceContext

DEFAULT_BASE_TOPICS = {"opendtu": "solar/", "ahoydtu": "inverter/", "generic": ""}


class MqttField(BaseModel):
    """Where one field's value is in a message."""

    model_config = STRICT

    json_path: str | None = Field(
        default=None, description="Path into a JSON payload, e.g. `ENERGY.Power` or "
        "`$.sensors[0].value`; unset = the whole payload is the number.")
    scale: float = Field(default=1.0, description="Factor applied to the value, e.g. 1000 to "
                         "turn kWh into the profile's Wh.")


class MqttMapping(BaseModel):
    """One generic mapping: messages on ``topic`` become samples of ``measurement``."""

    model_config = STRICT

    topic: str = Field(min_length=1, description="Topic pattern: literal levels, `+` (any "
                       "one level), `{name}` (any one level, captured as `name`) and a final "
                       "`#` (any rest).")
    measurement: str = Field(min_length=1, description="Measurement (profile) the samples "
                             "belong to.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tag values by tag key; "
                                 "`{name}` inserts a captured topic level. Tags not given are "
                                 "empty strings.")
    fields: dict[str, MqttField] = Field(min_length=1, description="Fields by name (a name "
                                         "may be a `{name}` template); each says where its "
                                         "value is in the payload.")

    @model_validator(mode="after")
    def _check_pattern(self) -> MqttMapping:
        from sunarchive.sources.mqtt.generic import check_mapping

        check_mapping(self)
        return self


class MqttSettings(SourceSettings):
    """A ``sources`` entry of ``type: mqtt``: subscribe to a broker and map topics to samples."""

    type: Literal["mqtt"] = Field(default="mqtt", description="Source type.")
    host: str = Field(default="localhost", min_length=1, description="Broker host name or "
                      "address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(default=None, description="Broker user name.")
    password: SecretStr | None = Field(default=None, description="Broker password (never "
                                       "logged).")
    client_id: str | None = Field(default=None, description="MQTT client id; unset = a random "
                                  "one.")
    layout: Literal["opendtu", "ahoydtu", "generic"] = Field(
        default="opendtu", description="Topic layout: opendtu, ahoydtu, or generic "
        "(`mappings`).")
    base_topic: str | None = Field(default=None, description="Topic prefix of the DTU; unset "
                                   "= `solar/` (OpenDTU) or `inverter/` (AhoyDTU).")
    dtu_name: str | None = Field(default=None, description="`dtu_name` tag of the DTU's "
                                 "samples; unset = the source name.")
    dtu_serial: str = Field(default="", description="`dtu_serial` tag of the DTU totals.")
    inverter_serials: dict[str, str] = Field(
        default_factory=dict, description="AhoyDTU: serial number by inverter name (AhoyDTU "
        "topics carry names); a name not listed is used as the serial_number tag.")
    mappings: list[MqttMapping] = Field(default_factory=list, description="Generic layout: "
                                        "topic patterns and what they become.")
    status_topic: str | None = Field(default=None, description="Generic layout: topic whose "
                                     "payload tells whether the device is online (a last "
                                     "will).")
    online_payload: str = Field(default="online", description="Generic layout: status "
                                "payload meaning online.")
    offline_payload: str = Field(default="offline", description="Generic layout: status "
                                 "payload meaning offline.")
    qos: Literal[0, 1, 2] = Field(default=0, description="Subscription QoS.")
    keepalive_s: int = Field(default=60, ge=5, le=65535, description="MQTT keepalive "
                             "interval.")
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_S,
                             description="Seconds to wait for the broker "
                             "to accept a connection or subscription.")
    backoff_min_s: float = Field(default=1.0, gt=0, le=MAX_INTERVAL_S,
                                 description="First wait after a lost or "
                                 "refused connection; doubles on each further failure.")
    backoff_max_s: float = Field(default=60.0, gt=0, le=MAX_INTERVAL_S,
                                 description="Longest wait between "
                                 "connection attempts.")
    group_quiet_s: float = Field(default=0.5, gt=0, le=60, description="Values of one device or "
                                 "channel arriving within this quiet time form one sample.")

    @model_validator(mode="after")
    def _consistent(self) -> MqttSettings:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must not be smaller than backoff_min_s")
        if self.layout == "generic" and not self.mappings:
            raise ValueError("the generic layout needs at least one entry in mappings")
        if self.layout != "generic" and self.mappings:
            raise ValueError(f"mappings are only used by the generic layout, not {self.layout}")
        return self

    @property
    def base(self) -> str:
        """The base topic, ending in ``/`` unless empty."""
        base = DEFAULT_BASE_TOPICS[self.layout] if self.base_topic is None else self.base_topic
        return base if not base or base.endswith("/") else base + "/"

    @property
    def dtu(self) -> str:
        """The ``dtu_name`` tag value."""
        return self.dtu_name or self.name

    def build(self, context: SourceContext) -> Source:
        from sunarchive.sources.mqtt.client import MqttSource

        return MqttSource(self, context)
