"""The pure core of alerting, shared by the hub and by an agent's edge fallback: rule kinds
(one module each), the evaluator that turns readings into condition changes, suppression
(defrost, doors, power-up, maintenance) and the text of messages. No I/O here; the hub's
lifecycle, escalation and notifiers live in :mod:`alerts`."""
