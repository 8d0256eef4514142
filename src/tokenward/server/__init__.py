"""tokenward.server."""
