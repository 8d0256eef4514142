"""The Discord provider: provider.yaml, tools.yaml and the hooks they name."""
