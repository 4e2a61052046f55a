"""Every UI string, in zh-CN and en. The language is the ``coldchain_lang`` cookie, else
zh-CN (the example sites are Chinese and their operators read Chinese)."""

from __future__ import annotations

from typing import Final, Literal

from fastapi import Request

Lang = Literal["zh-CN", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh-CN", "en")
DEFAULT: Final[Lang] = "zh-CN"
COOKIE: Final = "coldchain_lang"

CATALOGUE: Final[dict[str, tuple[str, str]]] = {
    # key: (zh-CN, en)
    "app": ("冷链监控", "Cold-chain monitor"),
    "no_leader": (
        "没有中心在处理告警：现在不会发出任何告警短信。请检查告警主进程（coldchain hub）。",  # noqa: RUF001
        "No hub runs the alerts now: no alarm is being sent. Check the alert leader "
        "(coldchain hub).",
    ),
    "board": ("实时看板", "Live board"),
    "alerts": ("告警", "Alerts"),
    "gateways": ("网关", "Gateways"),
    "reports": ("报表", "Reports"),
    "daily_log": ("温湿度日志", "Daily temperature log"),
    "records": ("记录保存", "Records kept"),
    "oldest_record": ("最早的读数", "Oldest reading kept"),
    "days": ("天", "days"),
    "retention": ("保存期限", "Retention"),
    "retention_server": ("由时序数据库设定", "set by the time-series server"),
    "retention_waiver": ("保存期限豁免", "Retention waiver"),
    "approved_by": ("批准人", "approved by"),
    "disk_used": ("磁盘占用", "Disk used"),
    "disk_per_year": ("预计每年磁盘占用", "Disk per year, projected"),
    "not_enough_data": ("数据不足一天，无法预计", "under a day of data: no projection"),  # noqa: RUF001
    "audit_head": ("审计追踪链头", "Audit trail head"),
    "seal_head": ("读数封存链头", "Readings seal head"),
    "last_backup": ("最近一次有效备份", "Last good backup"),
    "backup_failed": ("备份失败:", "Backup failed:"),
    "backup_waiting": ("已计划,尚无备份", "scheduled, none made yet"),
    "backup_none": ("未配置每日备份 (hub.backup)", "no daily backup configured (hub.backup)"),
    "not_sealed": (
        "尚未封存(SQLite 存储每小时封存一次)",
        "nothing sealed yet (the SQLite store seals each hour)",
    ),
    "excursion_report": ("超标报告 (含MKT)", "Excursion report (with MKT)"),
    "date": ("日期", "Date"),
    "printable": ("打印版", "Printable"),
    "users": ("用户", "Users"),
    "logout": ("退出", "Log out"),
    "login": ("登录", "Log in"),
    "user": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "role": ("角色", "Role"),
    "login_failed": ("用户名或密码错误", "Wrong user name or password"),
    "login_locked.account": (
        "该账号登录失败次数过多，请{wait}后再试",  # noqa: RUF001 - Chinese punctuation
        "Too many failed logins for this user: try again in {wait}",
    ),
    "login_locked.address": (
        "此地址登录失败次数过多，请{wait}后再试",  # noqa: RUF001 - Chinese punctuation
        "Too many failed logins from this address: try again in {wait}",
    ),
    "sessions": ("在线会话", "Sessions"),
    "logout_everywhere": ("全部下线", "Log out everywhere"),
    "wall": ("大屏模式", "Display wall"),
    "state.ok": ("正常", "OK"),
    "state.warning": ("预警", "Warning"),
    "state.alarm": ("报警", "Alarm"),
    "state.offline": ("离线", "Offline"),
    "state.defrost": ("除霜", "Defrost"),
    "state.maintenance": ("维护", "Maintenance"),
    "temperature": ("温度", "Temperature"),
    "humidity": ("湿度", "Humidity"),
    "door": ("门", "Door"),
    "door.open": ("开", "open"),
    "door.closed": ("关", "closed"),
    "for": ("已", "for"),
    "last_reading": ("最近读数", "Last reading"),
    "ago": ("前", "ago"),
    "no_data": ("无数据", "no data"),
    "active_alerts": ("当前告警", "Active alerts"),
    "more_alerts": ("另有 %d 条", "%d more"),
    "past_alerts": ("历史告警", "Past alerts"),
    "none": ("无", "none"),
    "site": ("站点", "Site"),
    "room": ("库房", "Room"),
    "rule": ("规则", "Rule"),
    "severity": ("级别", "Severity"),
    "state": ("状态", "State"),
    "since": ("开始", "Since"),
    "value": ("数值", "Value"),
    "limit": ("限值", "Limit"),
    "escalation": ("升级", "Escalation"),
    "level": ("级", "level"),
    "snoozed_until": ("暂停至", "snoozed until"),
    "told": ("已通知", "Who was told"),
    "acknowledge": ("确认", "Acknowledge"),
    "comment": ("处理情况", "What was done"),
    "acked_by": ("确认人", "Acknowledged by"),
    "signatures": ("电子签名", "Signatures"),
    "sign": ("签署", "Sign"),
    "sign.acknowledged": ("签署确认", "Sign the acknowledgement"),
    "sign.reviewed": ("签署复核", "Sign as reviewed"),
    "sign.closed": ("签署关闭(原因与纠正措施)", "Close, signed (cause and corrective action)"),
    "meaning.acknowledged": ("已确认", "acknowledged"),
    "meaning.reviewed": ("已复核", "reviewed"),
    "meaning.closed": ("已关闭", "closed"),
    "meaning.approved": ("已批准", "approved"),
    "cause": ("原因", "Cause"),
    "corrective_action": ("纠正措施", "Corrective action"),
    "password_again": ("再次输入密码", "Your password again"),
    "second_factor_code": ("验证码（如已设置）", "Authenticator code, if you have one"),  # noqa: RUF001
    "resolved": ("恢复", "Resolved"),
    "history": ("历史曲线", "History"),
    "custom": ("自定义", "Custom"),
    "from": ("从", "From"),
    "to": ("到", "To"),
    "show": ("显示", "Show"),
    "min": ("最低", "Min"),
    "max": ("最高", "Max"),
    "mean": ("平均", "Mean"),
    "mkt": ("平均动力学温度", "MKT"),
    "door_open_periods": ("开门时段", "door open"),
    "defrost_periods": ("除霜时段", "defrost"),
    "gateway": ("网关", "Gateway"),
    "online": ("在线", "online"),
    "offline": ("离线", "offline"),
    "unknown": ("未知", "unknown"),
    "last_seen": ("最后在线", "Last seen"),
    "backlog": ("积压", "Backlog"),
    "poll_success": ("采集成功率", "Poll success"),
    "version": ("版本", "Agent version"),
    "clock_offset": ("时钟偏差", "Clock offset"),
    "retime_marked": (
        "%d 条读数时钟未同步，偏差 %+.0f 秒",  # noqa: RUF001 - Chinese punctuation
        "%d readings taken with the clock %+.0f s off",
    ),
    "retime_why": ("原因（记入审计）", "why (audited)"),  # noqa: RUF001 - Chinese punctuation
    "retime": ("校正时间", "Correct their time"),
    "retime_done": (
        "已校正 %d 条，%d 条冲突未动",  # noqa: RUF001 - Chinese punctuation
        "%d corrected, %d left (their time was taken)",
    ),
    "forecast_in": ("约 %g 分钟后", "in ~%g min"),
    "config_rev": ("配置版本", "Config revision"),
    "config_applied": ("已应用", "applied"),
    "config_pending": ("等待网关应用", "waiting for the gateway"),
    "config_refused": ("网关拒绝", "refused by the gateway"),
    "config_runs": ("运行版本", "runs"),
    "config_restart": ("重启代理后生效", "after the agent restarts"),
    "scan_bus": ("扫描或读取总线", "Scan or read a bus"),
    "menu": ("菜单", "Menu"),
    "line": ("分拣线", "Sorting line"),
    "line.running": ("运行中", "running"),
    "line.stopped": ("停机", "stopped"),
    "line.jam": ("卡件", "jammed"),
    "line.e_stop": ("急停", "emergency stop"),
    "line.fault": ("故障", "fault"),
    "chutes_full": ("格口满", "chutes full"),
    "line_shift": ("最近 %d 小时", "the last %d hours"),
    "line_hour": ("时段", "hour"),
    "line_sorted": ("分拣件数", "sorted"),
    "line_rejected": ("剔除件数", "rejected"),
    "line_reject_rate": ("剔除率", "reject rate"),
    "line_event": ("事件", "event"),
    "line_minutes": ("分钟", "min"),
    "line_ongoing": ("仍在持续", "ongoing"),
    "line_span.jam": ("卡件", "jam"),
    "line_span.e_stop": ("急停", "emergency stop"),
    "line_span.fault": ("故障", "fault"),
    "line_span.conveyor_running": ("停机", "stopped"),
    "until": ("至", "until"),
    "refrigeration": ("制冷健康（近7天）", "Refrigeration, the last 7 days"),  # noqa: RUF001
    "duty": ("压缩机运行率", "compressor duty"),
    "duty_by_hour": (
        "压缩机运行率，近24小时逐时（%）",  # noqa: RUF001
        "compressor duty, the last 24 hours by hour (%)",
    ),
    "maintenance_report": (
        "维护报告（一周制冷情况）",  # noqa: RUF001
        "Maintenance report (a week of refrigeration)",
    ),
    "week_to": ("截至", "week to"),
    "defrosts": ("化霜次数", "defrosts"),
    "defrost_min": ("平均化霜分钟", "mean defrost, min"),
    "door_openings": ("开门次数", "door openings"),
    "pull_down_min": ("开门后回温分钟", "pull-down after a door, min"),
    "flag.duty_rising": (
        "压缩机运行率逐日上升（每天 %.1f 个百分点），开门次数未增：请检查压缩机、冷媒与蒸发器结霜",  # noqa: RUF001
        "the compressor works harder day by day (%.1f points a day) at the same door "
        "traffic: check the compressor, the refrigerant, the coil's ice",
    ),
    "flag.no_pull_down": (
        "压缩机连续运行 %.0f 分钟而库温未降",
        "the compressor ran %.0f min on end and the air did not come down",
    ),
    "limit_low": ("下限", "low"),
    "limit_high": ("上限", "high"),
    "outside_limits": ("超出限值", "outside the limits"),
    "forecast_line": ("趋势预测", "forecast trend"),
    "identity": ("接入身份", "Broker identity"),
    "identity_none": ("无（未开通）", "none: provision it"),  # noqa: RUF001 - Chinese punctuation
    "provision": ("开通", "Provision"),
    "rotate": ("换新密码", "Rotate"),
    "retire": ("停用旧密码", "Retire old"),
    "revoke": ("吊销", "Revoke"),
    "identity_confirm_revoke": (
        "吊销网关 %s？它会立即断开，直到重新开通前无法再接入。",  # noqa: RUF001 - Chinese punctuation
        "Revoke gateway %s? It is cut off at once and cannot reconnect until provisioned again.",
    ),
    "identity_confirm_retire": (
        "停用网关 %s 的旧密码？只有最新的密码仍可用。",  # noqa: RUF001 - Chinese punctuation
        "Retire gateway %s's old passwords? Only the newest keeps working.",
    ),
    "identity_bundle": (
        "已下载 %s：其中有网关的密码，请像密码一样保管，安装后删除",  # noqa: RUF001 - Chinese punctuation
        "downloaded %s: it holds the gateway's password; keep it as one, delete it once installed",
    ),
    "scan": ("扫描", "Scan"),
    "read": ("读取", "Read"),
    "failing_since": ("无数据，自", "no data since"),  # noqa: RUF001 - Chinese punctuation
    "pi": ("网关设备", "The Pi"),
    "pi_ok": ("正常", "ok"),
    "hint_under_voltage": (
        "电压不足：请检查电源和电源线",  # noqa: RUF001 - Chinese punctuation
        "under-voltage now: check the power supply and cable",
    ),
    "hint_under_voltage_since_boot": (
        "开机后曾电压不足：请检查电源和电源线",  # noqa: RUF001 - Chinese punctuation
        "under-voltage since boot: check the power supply and cable",
    ),
    "hint_throttled": (
        "CPU 降频（过热或电源不足）",  # noqa: RUF001 - Chinese punctuation
        "CPU throttled (heat or power)",
    ),
    "hint_disk": (
        "存储将满：剩余 %d%%",  # noqa: RUF001 - Chinese punctuation
        "disk nearly full: %d%% free",
    ),
    "hint_hot": (
        "CPU 温度 %d °C：请检查通风",  # noqa: RUF001 - Chinese punctuation
        "CPU at %d °C: check the ventilation",
    ),
    "hint_backlog": (
        "待发送数据积压：最早一条已等待 %d 分钟（上传跟不上）",  # noqa: RUF001 - Chinese punctuation
        "outbox backlog: the oldest reading has waited %d min (the uplink is not keeping up)",
    ),
    "hint_wear": (
        "存储卡寿命将尽：请准备更换",  # noqa: RUF001 - Chinese punctuation
        "storage nearly worn out: plan to replace it",
    ),
    "hint_clock_step": (
        "时钟同步时校正了 %+d 秒：此前的读数已标记为时间不确定",  # noqa: RUF001 - Chinese punctuation
        "the clock was corrected by %+d s when it synchronised: readings before are marked",
    ),
    "hint_clock": (
        "时钟未同步：读数时间可能有误",  # noqa: RUF001 - Chinese punctuation
        "clock not synchronised: reading times may be wrong",
    ),
    "add_user": ("添加用户", "Add user"),
    "add": ("添加", "Add"),
    "remove": ("删除", "Remove"),
    "forbidden": ("无权访问", "Not allowed"),
    "acked": ("已确认", "acknowledged"),
    "alert.pending": ("待定", "pending"),
    "alert.firing": ("报警中", "firing"),
    "alert.acknowledged": ("已确认", "acknowledged"),
    "live": ("实时", "live"),
    "language": ("English", "中文"),
}


# What an alert is about (the words of coldchain/alerting/messages.py's SMS).
CONDITIONS: Final[dict[str, tuple[str, str]]] = {
    "temperature/above": ("温度过高", "too warm"),
    "temperature/below": ("温度过低", "too cold"),
    "humidity/above": ("湿度过高", "humidity high"),
    "humidity/below": ("湿度过低", "humidity low"),
    "rate_of_rise": ("升温过快", "rising fast"),
    "forecast": ("预计超温", "reaches its limit"),
    "door_open": ("门未关", "door open"),
    "door_open_warm": ("门未关且升温", "door open and warming"),
    "stale": ("传感器无数据", "no data from sensor"),
    "sensor_fault": ("传感器故障", "sensor fault"),
    "gateway_offline": ("网关离线", "gateway offline"),
    "gateway_clock": ("网关时钟偏差", "gateway clock off"),
    "gateway_backlog": ("网关数据积压", "gateway backlog"),
    "gateway_disk": ("网关存储将满", "gateway disk nearly full"),
    "backup": ("备份缺失或失败", "no good backup"),
    "power": ("断电", "power cut"),
    "line/jam": ("分拣线卡件", "sorting line jammed"),
    "line/e_stop": ("分拣线急停", "sorting line emergency stop"),
    "line/fault": ("分拣线故障", "sorting line fault"),
    "line/chute_full": ("格口已满", "chute full"),
    "line/chute_warm": ("格口温度过高", "chute too warm"),
    "line/stopped": ("分拣线在运行时段停机", "sorting line stopped in its running hours"),
}


def condition(kind: str, quantity: str, direction: str | None, lang: Lang) -> str:
    """An alert's condition in words: "温度过高" for a threshold above on temperature."""
    key = f"{quantity}/{direction}" if kind == "threshold" else kind
    if kind == "line":
        key = f"line/{quantity}"
    pair = CONDITIONS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "zh-CN" else pair[1]


def lang_of(request: Request) -> Lang:
    got = request.cookies.get(COOKIE)
    for lang in LANGS:
        if got == lang:
            return lang
    return DEFAULT


def translate(key: str, lang: Lang) -> str:
    pair = CATALOGUE.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "zh-CN" else pair[1]


def wait(seconds: float, lang: Lang) -> str:
    """A wait in words, rounded up to the second: "1分30秒", "1 min 30 s"."""
    total = max(1, -int(-seconds // 1))
    minutes, secs = divmod(total, 60)
    if lang == "zh-CN":
        return (f"{minutes}分" if minutes else "") + (f"{secs}秒" if secs or not minutes else "钟")
    return " ".join(
        x for x in (f"{minutes} min" if minutes else "", f"{secs} s" if secs else "") if x
    )
