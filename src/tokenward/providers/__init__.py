"""tokenward.providers."""
