"""The operators' web UI served by the hub: the live board (server-sent events), room
history charts, alerts with acknowledgement, gateways, reports, the language switch; zh-CN
and en. Server-rendered Jinja2 pages (:mod:`dashboards.web.render`, which the hub's login
and users pages use too), a little JavaScript, uPlot vendored under ``static/vendor``.
Login, sessions, CSRF checks and roles are the hub's (:mod:`hub.auth`): the routers here get
the role check as a parameter.

    mount_ui(app, WebContext(...), auth.require, Renderer(cfg))   # by the hub
"""

from __future__ import annotations

from dashboards.web.pages import WebContext, mount_ui, ui_router
from dashboards.web.render import Renderer

__all__ = ["Renderer", "WebContext", "mount_ui", "ui_router"]
