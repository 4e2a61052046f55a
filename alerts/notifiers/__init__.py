"""Notifiers: cloud SMS providers, a GSM modem, webhooks and group robots."""
