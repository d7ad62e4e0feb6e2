"""The SunSpec Modbus TCP source.

``config`` holds the settings model (pydantic only); ``models`` decodes register images
(pure, no network); ``poller`` talks to the device (pymodbus, imported only when the source
is built).
"""
