"""Who is told of an alert: the one choice of recipients, shared by the hub's escalation
and an agent's edge fallback.

The recipients of some levels of a policy are, level by level, the level's contacts who cover
the alert's site (a contact with no ``sites`` covers every site), then the level's channels
(group robots, webhooks); each once, in that order. A contact id the config does not know is
skipped. The edge fallback texts the first level's contacts (a modem reaches no channel).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coldchain.alerting.settings import Policy
from coldchain.config.site import Contact


def recipients(
    policy: Policy, levels: Iterable[int], *, site: str, contacts: Mapping[str, Contact]
) -> list[str]:
    """Contact and channel ids to tell about an alert of ``site`` at ``levels``."""
    out: list[str] = []
    for i in levels:
        level = policy.levels[i]
        for cid in level.contacts:
            contact = contacts.get(cid)
            if contact is None or (contact.sites and site not in contact.sites):
                continue
            if cid not in out:
                out.append(cid)
        out += [ch for ch in level.channels if ch not in out]
    return out


def first_level_contacts(
    policy: Policy | None, *, site: str, contacts: Mapping[str, Contact]
) -> list[Contact]:
    """The people of a policy's first level who cover ``site`` (no policy: nobody)."""
    if policy is None:
        return []
    return [
        contacts[c] for c in recipients(policy, [0], site=site, contacts=contacts) if c in contacts
    ]
