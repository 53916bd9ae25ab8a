"""``mnemolog demo``: a short tour on a real store, printed as it happens."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mnemolog.store import MemoryStore


def run_demo(store: MemoryStore) -> str:
    """Writes, changes, deletes and restores memories; returns the report."""
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    user = f"user:alice-{run}"
    lines: list[str] = [
        f"mnemolog demo: memories of {user} (tenant {store.tenant_name})"
    ]

    def show(title: str, data: Any) -> None:
        lines.append(f"\n== {title}")
        lines.append(json.dumps(data, indent=2, ensure_ascii=False, default=str))

    store.put(
        f"{user}:preferences",
        "theme",
        {"mode": "light", "font_size": 14},
        tags=["ui", "preference"],
        metadata={"confidence_source": "explicit", "turn": 3},
        actor="onboarding-agent",
        task_id="onboarding",
        source="chat",
    )
    store.put(
        f"{user}:profile",
        "employer",
        "Acme Corp",
        tags=["profile"],
        memory_type="semantic",
        importance=0.7,
        actor="onboarding-agent",
        source="chat",
    )
    store.put(
        f"{user}:episodes",
        "first-meeting",
        {"summary": "Alice asked for help planning a trip to Lisbon"},
        tags=["travel"],
        memory_type="episodic",
        actor="planner-agent",
    )
    before_changes = datetime.now(UTC)

    store.update(
        f"{user}:preferences",
        "theme",
        {"mode": "dark", "font_size": 14},
        metadata={"turn": 17},
        actor="settings-agent",
        reason="user asked for dark mode",
    )
    store.delete(
        f"{user}:profile", "employer", actor="profile-agent", reason="user left Acme"
    )
    store.restore(
        f"{user}:profile",
        "employer",
        actor="profile-agent",
        reason="deleted by mistake",
    )
    store.put(
        f"{user}:profile",
        "employer",
        "Globex",
        actor="profile-agent",
        reason="user started at Globex",
    )

    show(
        "history of preferences/theme: who changed what, when",
        [
            {
                "version": h.version,
                "kind": h.kind,
                "at": h.at.isoformat(),
                "actor": h.actor,
                "reason": h.reason,
                "value": h.memory.value,
                "hash": h.hash[:16],
                "prev_hash": h.prev_hash[:16],
            }
            for h in store.history(f"{user}:preferences", "theme")
        ],
    )
    then = {
        key: memory.value if memory else None
        for key, memory in (
            ("theme", store.get(f"{user}:preferences", "theme", as_of=before_changes)),
            (
                "employer",
                store.get(f"{user}:profile", "employer", as_of=before_changes),
            ),
        )
    }
    show(f"what the agent knew at {before_changes.isoformat()} (as_of)", then)
    now = {
        "theme": _value(store, f"{user}:preferences", "theme"),
        "employer": _value(store, f"{user}:profile", "employer"),
    }
    show("what it knows now", now)
    show(
        f"search: namespace prefix {user}, tags any of [preference, profile]",
        [
            {
                "namespace": m.namespace,
                "key": m.key,
                "version": m.version,
                "value": m.value,
            }
            for m in store.search(
                namespace_prefix=user,
                tags_any=["preference", "profile"],
                order_by="key",
            )
        ],
    )
    show(
        "search: episodic memories",
        [
            {"key": m.key, "value": m.value}
            for m in store.search(namespace_prefix=user, memory_type="episodic")
        ],
    )
    return "\n".join(lines)


def _value(store: MemoryStore, namespace: str, key: str) -> Any:
    memory = store.get(namespace, key)
    return memory.value if memory else None
