"""Alerts: rules evaluated on the live stream, the alert lifecycle and escalation,
acknowledgement, and the notifiers (SMS providers, GSM modem, webhooks) that reach people.
"""
