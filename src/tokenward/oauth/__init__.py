"""tokenward.oauth."""
