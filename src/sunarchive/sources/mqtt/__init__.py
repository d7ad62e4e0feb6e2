"""The MQTT source: OpenDTU and AhoyDTU topic layouts and generic topic mappings.

``config`` holds the settings model (pydantic only); ``readings`` the shared sample grouping;
``opendtu``, ``ahoy`` and ``generic`` turn one message into readings (pure, no network);
``client`` is the running source (aiomqtt, imported only when the source is built).
"""
