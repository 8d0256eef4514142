"""tokenward.proxy."""
