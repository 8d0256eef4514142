"""tokenward.tools."""
