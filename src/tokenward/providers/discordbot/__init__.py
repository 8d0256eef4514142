"""The Discord Bot provider: each connected account holds a bot token (data in this folder)."""
