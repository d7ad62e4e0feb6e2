"""MQTT topic mappings without a broker: OpenDTU, AhoyDTU and generic layouts, value parsing,
grouping of one publish cycle into one sample, and the settings model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from sunarchive.model import ConfigError, Event, InputError
from sunarchive.profiles import load_profiles
from sunarchive.settings import load_settings
from sunarchive.sources.mqtt import ahoy, opendtu
from sunarchive.sources.mqtt.ahoy import AhoyLayout
from sunarchive.sources.mqtt.config import MqttMapping, MqttSettings
from sunarchive.sources.mqtt.generic import (
    GenericLayout,
    compile_mapping,
    match_topic,
    mqtt_filter,
    parse_json_path,
    parse_pattern,
)
from sunarchive.sources.mqtt.opendtu import OpenDTULayout
from sunarchive.sources.mqtt.readings import (
    Grouper,
    Layout,
    Reading,
    parse_number,
    to_batches,
)
from tests.support.sinks import ListSink

pytestmark = pytest.mark.unit

TRAFFIC = Path(__file__).parent / "data" / "opendtu_traffic.jsonl"
PROFILES = load_profiles()
A, B = "114182912345", "116183456789"


def _values(layout: Layout, topic: str,
            payload: str) -> list[tuple[str, tuple[str, ...], str, float]]:
    return [(r.measurement, r.tags, r.field, r.value)
            for r in layout.decode(topic, payload.encode()).readings]


# -- profile consistency --------------------------------------------------------------------
@pytest.mark.parametrize("variable_map", [opendtu.VARIABLE_MAP, ahoy.VARIABLE_MAP])
def test_variable_maps_name_profile_fields(variable_map: dict[str, dict[str, tuple[str, float]]]
                                           ) -> None:
    measurement = {"ac": "inverter", "status": "inverter", "dc": "port", "total": "dtu"}
    for group, names in variable_map.items():
        fields = {f.name for f in PROFILES[measurement[group]].fields}
        for vendor, (field, _) in names.items():
            assert field in fields, f"{group}/{vendor} → {field}"


def test_tag_order_follows_profiles() -> None:
    assert PROFILES["dtu"].tags == ("dtu_name", "dtu_serial")
    assert PROFILES["inverter"].tags == ("serial_number", "dtu_name")
    assert PROFILES["port"].tags == ("serial_number", "port_number", "dtu_name")
    for field in ("today_production", "total_production"):
        assert PROFILES["port"].field(field).unit == "Wh"
        assert PROFILES["dtu"].field(field).unit == "Wh"


# -- OpenDTU ---------------------------------------------------------------------------------
def test_opendtu_topics_map_to_profiles() -> None:
    dtu = OpenDTULayout("solar/", "roof-dtu", "199980012345")
    assert dtu.filters() == ["solar/#"]
    assert _values(dtu, f"solar/{A}/0/voltage", "230.6") == [
        ("inverter", (A, "roof-dtu"), "grid_voltage", 230.6)]
    assert _values(dtu, f"solar/{A}/0/frequency", "49.99")[0][2:] == ("grid_frequency", 49.99)
    assert _values(dtu, f"solar/{B}/3/voltage", "33.1") == [
        ("port", (B, "3", "roof-dtu"), "pv_voltage", 33.1)]
    assert _values(dtu, f"solar/{B}/3/yieldday", "812") == [
        ("port", (B, "3", "roof-dtu"), "today_production", 812.0)]
    assert _values(dtu, f"solar/{B}/3/yieldtotal", "1021.5")[0][3] == 1021500.0
    assert _values(dtu, f"solar/{B}/3/yieldtotal", "1.001")[0][3] == 1001.0, "exact Wh"
    assert _values(dtu, "solar/ac/yieldtotal", "3.25") == [
        ("dtu", ("roof-dtu", "199980012345"), "total_production", 3250.0)]
    assert _values(dtu, "solar/ac/power", "812.5")[0][2:] == ("pv_power", 812.5)
    assert _values(dtu, f"solar/{A}/status/reachable", "1")[0][2:] == ("link_status", 1.0)
    assert _values(dtu, f"solar/{A}/status/producing", "0")[0][2:] == ("operating_status", 0.0)
    for unmapped in (f"{A}/1/irradiation", f"{A}/0/powerfactor", f"{A}/status/last_update",
                     "dc/power", "dtu/uptime", "dtu/hostname", f"{A}/device/hwversion"):
        assert _values(dtu, "solar/" + unmapped, "1") == [], unmapped
    assert _values(dtu, "other/ac/power", "5") == []


def test_opendtu_status_names_and_reachability() -> None:
    dtu = OpenDTULayout("solar/", "d")
    assert dtu.decode("solar/dtu/status", b"offline").online is False
    assert dtu.decode("solar/dtu/status", b"online").online is True
    assert dtu.decode(f"solar/{A}/name", b"Garage HM-600").readings == []
    assert dtu.names == {A: "Garage HM-600"}
    dtu.decode(f"solar/{A}/status/reachable", b"0")
    assert _values(dtu, f"solar/{A}/1/power", "0") == [], "zeros of an unreachable inverter"
    dtu.decode(f"solar/{A}/status/reachable", b"1")
    assert _values(dtu, f"solar/{A}/1/power", "171.2")[0][3] == 171.2


def test_opendtu_bad_payload_names_the_topic() -> None:
    with pytest.raises(InputError, match=f"solar/{A}/1/power.*not a number"):
        OpenDTULayout("solar/", "d").decode(f"solar/{A}/1/power", b"n/a")


def test_recorded_opendtu_cycles_group_into_one_sample_per_series() -> None:
    """Replaying the capture through layout and grouper (recorded times, no broker): each
    5-s cycle gives one row per series with every mapped field."""
    dtu = OpenDTULayout("solar/", "roof-dtu")
    grouper = Grouper(quiet_s=0.5)
    samples = []
    records = [json.loads(line) for line in TRAFFIC.read_text().splitlines()]
    live = [r for r in records if not r.get("before_start")]
    for record in live:
        t = float(record["t"])
        samples += grouper.due(t)
        for reading in dtu.decode(record["topic"], record["payload"].encode()).readings:
            samples += grouper.add(reading, int(t * 1e9), t)
    samples += grouper.drain()
    assert len(samples) == 6 * 9
    by_measurement = {m: [s for s in samples if s.series[0] == m]
                      for m in ("dtu", "inverter", "port")}
    assert len(by_measurement["dtu"]) == 6 and len(by_measurement["inverter"]) == 12
    assert len(by_measurement["port"]) == 36
    assert {s.series[1] for s in by_measurement["port"]} == {
        (A, "1", "roof-dtu"), (A, "2", "roof-dtu"),
        *((B, str(ch), "roof-dtu") for ch in range(1, 5))}
    for s in by_measurement["port"]:
        assert set(s.values) == {"pv_voltage", "pv_current", "pv_power", "today_production",
                                 "total_production"}
    for s in by_measurement["inverter"]:
        assert set(s.values) == {"grid_voltage", "grid_frequency", "temperature",
                                 "link_status", "operating_status"}
    first = next(r for r in live if r["topic"] == f"solar/{B}/4/yieldtotal")
    port4 = next(s for s in by_measurement["port"] if s.series[1][:2] == (B, "4"))
    assert port4.values["total_production"] == pytest.approx(float(first["payload"]) * 1000)


# -- AhoyDTU ---------------------------------------------------------------------------------
def test_ahoy_topics_map_to_profiles() -> None:
    layout = AhoyLayout("inverter/", "balcony", serials={"HM800": "116180001111"})
    assert layout.filters() == ["inverter/#"]
    assert _values(layout, "inverter/HM800/ch0/U_AC", "231.2") == [
        ("inverter", ("116180001111", "balcony"), "grid_voltage", 231.2)]
    assert _values(layout, "inverter/HM800/ch0/Temp", "41.5")[0][2:] == ("temperature", 41.5)
    assert _values(layout, "inverter/HM800/ch2/I_DC", "5.12") == [
        ("port", ("116180001111", "2", "balcony"), "pv_current", 5.12)]
    assert _values(layout, "inverter/HM800/ch2/YieldTotal", "412.318")[0][3] == \
        pytest.approx(412318.0)
    assert _values(layout, "inverter/other/ch1/P_DC", "88")[0][1] == ("other", "1", "balcony")
    assert _values(layout, "inverter/total/YieldDay", "1450") == [
        ("dtu", ("balcony", ""), "today_production", 1450.0)]
    assert _values(layout, "inverter/HM800/ch1/Irradiation", "40") == []
    assert _values(layout, "inverter/uptime", "4000") == []
    assert layout.decode("inverter/mqtt", b"not connected").online is False
    assert layout.decode("inverter/mqtt", b"connected").online is True


def test_ahoy_available_gives_link_and_operating_status_and_gates_zeros() -> None:
    layout = AhoyLayout("inverter/", "d")
    assert [(r.field, r.value) for r in
            layout.decode("inverter/HM600/available", b"2").readings] == [
        ("link_status", 1.0), ("operating_status", 1.0)]
    layout.decode("inverter/HM600/available", b"0")
    assert _values(layout, "inverter/HM600/ch1/P_DC", "0") == []
    assert [(r.field, r.value) for r in
            layout.decode("inverter/HM600/available", b"1").readings] == [
        ("link_status", 1.0), ("operating_status", 0.0)]
    assert _values(layout, "inverter/HM600/ch1/P_DC", "12.5")[0][3] == 12.5


# -- generic -------------------------------------------------------------------------------
def _mapping(**kw: object) -> MqttMapping:
    return MqttMapping.model_validate(kw)


def test_patterns_match_wildcards_and_captures() -> None:
    levels = parse_pattern("tele/{device}/+/SENSOR")
    assert mqtt_filter(levels) == "tele/+/+/SENSOR"
    assert match_topic(levels, "tele/plug1/x/SENSOR") == {"device": "plug1"}
    assert match_topic(levels, "tele/plug1/x/STATE") is None
    assert match_topic(levels, "tele/plug1/SENSOR") is None
    rest = parse_pattern("home/{room}/#")
    assert match_topic(rest, "home/kitchen/a/b") == {"room": "kitchen"}
    assert match_topic(rest, "home/kitchen") == {"room": "kitchen"}
    assert match_topic(rest, "away/kitchen/a") is None
    for bad in ("a/#/b", "a/b+/c", "a/{x/c", "a/x{y}/c"):
        with pytest.raises(ValueError):
            parse_pattern(bad)


def test_json_paths() -> None:
    assert parse_json_path("ENERGY.Power") == ("ENERGY", "Power")
    assert parse_json_path("$.sensors[1].value") == ("sensors", 1, "value")
    assert parse_json_path("$") == ()
    with pytest.raises(ValueError, match="malformed"):
        parse_json_path("a..b")


def test_generic_mapping_json_path_scale_and_templates() -> None:
    tasmota = _mapping(topic="tele/{device}/SENSOR", measurement="energy_data",
                       tags={"device_id": "{device}", "data_source": "tasmota"},
                       fields={"grid_power": {"json_path": "ENERGY.Power"},
                               "battery_power": {"json_path": "$.bat[0].p", "scale": -1}})
    weather = _mapping(topic="weather/{station}/{quantity}", measurement="weather_data",
                       tags={"location": "{station}", "source": "mqtt"},
                       fields={"{quantity}": {"scale": 0.1}})
    layout = GenericLayout([compile_mapping(tasmota, PROFILES["energy_data"].tags),
                            compile_mapping(weather, PROFILES["weather_data"].tags)],
                           status_topic="tele/plug1/LWT", online_payload="Online",
                           offline_payload="Offline")
    assert layout.filters() == ["tele/+/SENSOR", "weather/+/+", "tele/plug1/LWT"]
    payload = json.dumps({"ENERGY": {"Power": 512}, "bat": [{"p": 40.5}]})
    assert _values(layout, "tele/plug1/SENSOR", payload) == [
        ("energy_data", ("plug1", "tasmota", ""), "grid_power", 512.0),
        ("energy_data", ("plug1", "tasmota", ""), "battery_power", -40.5)]
    assert _values(layout, "weather/garden/temperature", "215") == [
        ("weather_data", ("garden", "mqtt"), "temperature", 21.5)]
    assert _values(layout, "weather/garden/a/b", "1") == []
    assert layout.decode("tele/plug1/LWT", b"Offline").online is False
    assert layout.decode("tele/plug1/LWT", b"Online").online is True
    with pytest.raises(InputError, match="tele/plug2/SENSOR: no key 'ENERGY'"):
        layout.decode("tele/plug2/SENSOR", b'{"other": 1}')
    with pytest.raises(InputError, match="not JSON"):
        layout.decode("tele/plug2/SENSOR", b"{12")


def test_generic_mapping_errors_name_the_problem() -> None:
    with pytest.raises(ValidationError, match=re.escape("'{room}' uses 'room'")):
        _mapping(topic="home/{device}/t", measurement="weather_data",
                 tags={"location": "{room}"}, fields={"temperature": {}})
    with pytest.raises(ValidationError, match="must be the last level"):
        _mapping(topic="home/#/t", measurement="weather_data", fields={"temperature": {}})
    with pytest.raises(ConfigError, match="no tag 'room'"):
        compile_mapping(_mapping(topic="h/{r}", measurement="weather_data",
                                 tags={"room": "{r}"}, fields={"temperature": {}}),
                        PROFILES["weather_data"].tags)


def test_parse_number() -> None:
    assert parse_number(b" 12.5\n", "t") == 12.5
    assert parse_number("true", "t") == 1.0 and parse_number(False, "t") == 0.0
    assert parse_number(7, "t") == 7.0
    for bad in (b"nan", b"", "inf", None, {"a": 1}):
        with pytest.raises(InputError, match=r"^t: "):
            parse_number(bad, "t")


# -- grouping ------------------------------------------------------------------------------
def test_grouper_closes_on_repeated_field_and_quiet_time() -> None:
    g = Grouper(quiet_s=0.5)
    tags = ("s1", "1", "d")
    assert g.add(Reading("port", tags, "pv_voltage", 30.0), 1_000, 0.0) == []
    assert g.add(Reading("port", tags, "pv_current", 5.0), 2_000, 0.1) == []
    closed = g.add(Reading("port", tags, "pv_voltage", 31.0), 3_000, 0.2)
    assert [(s.time_ns, s.values) for s in closed] == [
        (1_000, {"pv_voltage": 30.0, "pv_current": 5.0})]
    assert g.due(0.6) == []
    late = g.due(0.75)
    assert [(s.time_ns, s.values) for s in late] == [(3_000, {"pv_voltage": 31.0})]
    g.add(Reading("port", ("s2", "1", "d"), "pv_power", 9.0), 4_000, 1.0)
    g.add(Reading("dtu", ("d", ""), "pv_power", 99.0), 5_000, 1.0)
    batches = {b.measurement: b for b in to_batches([*closed, *late, *g.drain()])}
    port = batches["port"]
    assert port.tag_sets == [tags, ("s2", "1", "d")]
    assert port.tag_index.tolist() == [0, 0, 1]
    assert port.fields["pv_voltage"].tolist()[:2] == [30.0, 31.0]
    assert np.isnan(port.fields["pv_current"][1]) and np.isnan(port.fields["pv_voltage"][2])
    assert batches["dtu"].fields["pv_power"].tolist() == [99.0]


# -- settings ------------------------------------------------------------------------------
def test_settings_from_yaml_keep_the_password_secret(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n"
        "  - {type: mqtt, name: roof, host: broker.lan, username: sun, password: s3cret}\n"
        "  - type: mqtt\n    name: plugs\n    layout: generic\n    base_topic: x\n"
        "    mappings:\n      - topic: tele/{d}/SENSOR\n        measurement: energy_data\n"
        "        tags: {device_id: '{d}'}\n"
        "        fields: {grid_power: {json_path: ENERGY.Power}}\n")
    settings = load_settings(config_file=config, env={}, dotenv_file=None)
    roof, plugs = settings.sources
    assert isinstance(roof, MqttSettings) and isinstance(plugs, MqttSettings)
    assert roof.layout == "opendtu" and roof.base == "solar/" and roof.port == 1883
    assert roof.dtu == "roof" and plugs.base == "x/"
    assert "s3cret" not in repr(roof) and "s3cret" not in str(settings)
    assert roof.password is not None and roof.password.get_secret_value() == "s3cret"
    with pytest.raises(ValidationError, match="generic layout needs at least one"):
        MqttSettings(name="x", layout="generic")
    with pytest.raises(ValidationError, match="only used by the generic layout"):
        MqttSettings(name="x", mappings=[plugs.mappings[0]])


def test_docs_sample_configs_load_and_build(tmp_path: Path) -> None:
    from sunarchive.sources.mqtt.client import make_layout
    from sunarchive.sources.running import SourceContext

    docs = Path(__file__).resolve().parents[1] / "docs" / "sources" / "mqtt.md"
    blocks = re.findall(r"```yaml\n(.*?)```", docs.read_text(), re.S)
    assert len(blocks) == 3
    layouts = []
    for i, block in enumerate(blocks):
        config = tmp_path / f"c{i}.yaml"
        config.write_text(block)
        settings = load_settings(config_file=config, env={"MQTT_PASSWORD": "pw"},
                                 dotenv_file=None)
        (source,) = settings.sources
        assert isinstance(source, MqttSettings)
        layouts.append(make_layout(source, SourceContext("UTC", PROFILES)))
    generic = layouts[2]
    assert _values(generic, "weather/garden/x/temperature", "215") == [
        ("weather_data", ("garden", "mqtt"), "temperature", 21.5)]
    assert _values(generic, "tele/plug1/SENSOR", '{"ENERGY": {"Power": 61}, '
                   '"battery": [{"power": 5}]}') == [
        ("energy_data", ("plug1", "tasmota", "garage"), "consumption", 61.0),
        ("energy_data", ("plug1", "tasmota", "garage"), "battery_power", -5.0)]
    assert _values(layouts[1], "inverter/HM-800/ch1/P_DC", "50")[0][1][0] == "116180001111"


def test_source_skips_retained_drops_unknown_fields_and_flushes_at_offline() -> None:
    from sunarchive.sources.mqtt.client import MqttSource
    from sunarchive.sources.running import SourceContext

    events: list[Event] = []
    settings = MqttSettings.model_validate({
        "name": "station", "layout": "generic", "status_topic": "x/lwt",
        "mappings": [{"topic": "x/{s}", "measurement": "weather_data",
                      "tags": {"location": "{s}"},
                      "fields": {"temperature": {"json_path": "t"},
                                 "dew_point": {"json_path": "d"}}}]})
    source = MqttSource(settings, SourceContext("UTC", PROFILES, events.append))
    sink = ListSink()
    source.handle("x/lwt", b"online", True, sink)
    assert source.status.state == "connected"
    source.handle("x/garden", b'{"t": 3.5, "d": 1}', True, sink)
    assert sink.batches == [] and source.retained_skipped == 1
    source.handle("x/garden", b'{"t": 20.5, "d": 9}', False, sink)
    source.handle("x/garden", b'{"t": "warm"}', False, sink)
    assert source.status.errors == 1 and "x/garden" in (source.status.last_error or "")
    assert sink.batches == [], "the sample stays open until its quiet time"
    source.handle("x/lwt", b"offline", True, sink)
    (batch,) = sink.batches
    assert batch.measurement == "weather_data" and batch.tag_sets == [("garden", "")]
    assert set(batch.fields) == {"temperature"} and batch.fields["temperature"][0] == 20.5
    assert source.status.state == "offline"
    assert [e.kind for e in events] == ["source_offline"]
    bad = settings.model_copy(update={"mappings": [
        MqttMapping.model_validate({"topic": "y", "measurement": "nope",
                                    "fields": {"v": {}}})]})
    with pytest.raises(ConfigError, match="'nope', which has no profile"):
        MqttSource(bad, SourceContext("UTC", PROFILES))
