"""The Hoymiles DTU source (``hoymiles-wifi``, protobuf over TCP port 10081).

``config`` holds the settings model (pydantic only); ``mapping`` turns a ``RealDataNew``
answer into ``dtu`` / ``inverter`` / ``port`` batches (pure); ``poller`` talks to the DTU
(the library is imported only when the source is built).
"""
