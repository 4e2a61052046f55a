"""The operators' web UI served by the hub: the live board (server-sent events), room
history charts, alerts with acknowledgement, gateways, users; login, revocable sessions,
CSRF checks and roles (:mod:`dashboards.auth`); zh-CN and en. Server-rendered Jinja2
pages, a little JavaScript, uPlot vendored under ``static/vendor``.

    mount_ui(app, WebContext(...))   # by the hub, its composition root
"""

from __future__ import annotations

from dashboards.web.pages import WebContext, mount_ui

__all__ = ["WebContext", "mount_ui"]
