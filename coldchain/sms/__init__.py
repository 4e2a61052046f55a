"""Text messages: what one is, SMS PDUs (GSM 7-bit and UCS-2, multipart), and a GSM modem
driven by AT commands. Shared because both the hub's notifiers and an agent's edge fallback
text through a modem, and the agent must not import :mod:`alerts`."""
