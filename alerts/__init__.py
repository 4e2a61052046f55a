"""The hub's side of alerts, on the pure core in :mod:`coldchain.alerting` (rules, evaluator,
suppression, facts, recipients, messages).

``service``: the facade the hub builds (:class:`~alerts.service.AlertService`), handing each
job to its module: ``lifecycle`` (pending, firing, acknowledged, resolved; persisted in
``store``, written in grouped transactions by ``transactions``), ``escalation`` (who is told
at which level, when), ``compose`` (the messages), ``actions`` (acknowledge, snooze, SMS
replies, delivery reports), ``maintenance`` (room maintenance windows), ``rule_edits`` (rules
changed at run time, audited), ``edge`` (what an agent's fallback already texted);
``dispatch`` sends through ``notifiers`` (SMS providers, a GSM modem, webhooks, group robots,
a file) with retries and failover. ``api`` is the alerts' router factory (the hub passes the
role guard), ``errors`` what the lifecycle refuses, ``cli`` the ``coldchain alerts`` command.
"""
