"""The pure core of alerting, shared by the hub and by an agent's edge fallback: rule kinds
(one module each), the evaluator that turns readings into condition changes, suppression
(defrost, doors, power-up, maintenance), the alert states (``states``), the facts of an alert
and who is told of it (``facts``, ``recipients``: one implementation for hub and agent), the
text of messages, and the immutable snapshot the live board reads (``snapshot``). No I/O
here; the hub's lifecycle, escalation and notifiers live in :mod:`alerts`."""
