"""A report in the reader's language: the documents are built in English
(:mod:`dashboards.reports.tables`), and :func:`localize` gives their Chinese text, the
language the web UI shows by default. Names from the site config and values stay as they
are; only the report's own words change: the title, the facts' labels, the sections' titles
and headers, and the few words a cell can hold ("ongoing", "not acknowledged")."""

from __future__ import annotations

import dataclasses
import re

from dashboards.reports.tables import Document, Section

# (RUF001 is silenced where a text uses Chinese punctuation, as Chinese readers expect)
ZH: dict[str, str] = {
    # titles
    "Daily temperature log": "温湿度日志",
    "Excursion report": "超标报告",
    "page": "页",
    # facts
    "Site": "站点",
    "Room": "库房",
    "Class": "类别",
    "Date": "日期",
    "Time zone": "时区",
    "Temperature limits": "温度限值",
    "Humidity limits": "湿度限值",
    "Generated": "生成时间",
    "Audit trail head": "审计追踪链头",
    "Readings seal head": "读数封存链头",
    "Period": "期间",
    "MKT": "平均动力学温度",
    "ΔH/R = 10000 K, each reading weighted by the time it stands for": (
        "ΔH/R = 10000 K，每条读数按其代表的时长加权"  # noqa: RUF001
    ),
    # sections
    "Summary": "汇总",
    "Records (every 30 min; every 2 min while out of range, marked *)": (
        "记录（每 30 分钟一条；超限时每 2 分钟一条，标 *）"  # noqa: RUF001
    ),
    "Excursions": "超标",
    "Readings left out of the figures": "未计入统计的读数",
    "Alerts, acknowledgements and comments": "告警、确认与备注",
    "Signatures (password re-entered; record digest as signed)": (
        "电子签名（重新输入密码；签署时记录的摘要）"  # noqa: RUF001
    ),
    "Signed": "签署时间",
    "Signed by": "签署人",
    "Role": "角色",
    "Record": "记录",
    "Meaning": "含义",
    "Cause": "原因",
    "Corrective action": "纠正措施",
    "Record digest (SHA-256)": "记录摘要 (SHA-256)",
    "Summary by room": "各库房汇总",
    "none": "无",
    "no room-air points in this room": "本库房无库温测点",
    "no room-air points": "无库温测点",
    # headers
    "Point": "测点",
    "Quantity": "物理量",
    "Min": "最低",
    "Max": "最高",
    "Mean": "平均",
    "MKT °C": "平均动力学温度 °C",
    "Data %": "数据完整率 %",
    "Gaps (min)": "缺失（分钟）",  # noqa: RUF001
    "Limit crossed": "越过的限值",
    "Start": "开始",
    "End": "结束",
    "Duration (min)": "时长（分钟）",  # noqa: RUF001
    "Peak": "峰值",
    "Peak at": "峰值时间",
    "Readings": "读数条数",
    "First": "首条",
    "Last": "末条",
    "Why": "原因",
    "Time": "时间",
    "Out of range": "超限",
    "Alert": "告警",
    "Rule": "规则",
    "Severity": "级别",
    "Since": "开始",
    "Resolved": "恢复",
    "Acknowledged": "确认时间",
    "By": "确认人",
    "Via": "方式",
    "Comment": "备注",
    "Maintenance report": "维护报告",
    "Refrigeration by room and day": "各库房每日制冷情况",
    "Flags": "提示",
    "Compressor duty %": "压缩机运行率 %",
    "Defrosts": "化霜次数",
    "Mean defrost (min)": "平均化霜（分钟）",  # noqa: RUF001
    "Door openings": "开门次数",
    "Pull-down (min)": "开门后回温（分钟）",  # noqa: RUF001
    "Flag": "提示",
    "At": "时间",
    "Detail": "数值",
    "no room reports its compressor or defrost": "无库房上报压缩机或化霜状态",
    "compressor works harder day by day at the same door traffic": (
        "压缩机运行率逐日上升而开门次数未增"
    ),
    "compressor ran without bringing the air down": "压缩机运行而库温未降",
    # cells
    "ongoing": "进行中",
    "not acknowledged": "未确认",
    "alarm": "报警",
    "warning": "预警",
}
_PERIOD = re.compile(r"(\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d)")


def _zh(text: str) -> str:
    return ZH.get(text, text)


def localize(doc: Document, lang: str) -> Document:
    """``doc`` in ``lang`` (``zh-CN``, or ``en`` as built)."""
    if lang != "zh-CN":
        return doc
    head, sep, rest = doc.title.partition(" · ")
    title = _zh(head) + sep + _PERIOD.sub(r"\1 至 \2", rest)
    return dataclasses.replace(
        doc,
        title=title,
        facts=tuple((_zh(k), _PERIOD.sub(r"\1 至 \2", _zh(v))) for k, v in doc.facts),
        sections=tuple(
            Section(
                _zh(s.title),
                tuple(_zh(h) for h in s.header),
                tuple(tuple(_zh(c) for c in row) for row in s.rows),
                empty=_zh(s.empty),
                flagged=s.flagged,
            )
            for s in doc.sections
        ),
        page=_zh(doc.page),
        lang="zh-CN",
    )
