"""HTTP API: REST under /api/v1, the live WebSocket, InfluxDB-compatible writes, dashboard."""
