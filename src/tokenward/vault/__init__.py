"""tokenward.vault."""
