"""tokenward.sdk."""
