"""The Discord Bot provider: a bot token per connected account; provider.yaml, tools.yaml and the
hooks they name."""
