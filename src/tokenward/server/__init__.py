"""tokenward.server: the HTTP API (FastAPI)."""
