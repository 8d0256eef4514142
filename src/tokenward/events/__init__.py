"""Events: signed webhooks to the application when something changes (the outbox, its delivery
worker, endpoint URLs and Standard Webhooks signatures)."""
