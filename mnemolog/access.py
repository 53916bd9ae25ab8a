"""Who may do what: principals, a policy of grants, and the check every call makes.

A store opened without a policy lets every caller do everything (the embedded,
single-user case). Once a policy is configured it denies by default: a call is
allowed only when some grant names the caller (by id or by one of its roles),
the action, the tenant, and a namespace prefix covering what the call touches,
on whole segments (``user:alice`` covers ``user:alice:prefs`` but not
``user:alice2``; ``""`` covers the whole tenant).

Sessions are checked against the namespace ``session:<app_name>:<user_id>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mnemolog.domain.errors import AccessDenied, ValidationError

Action = Literal["read", "write", "delete", "erase", "audit", "admin"]
ACTIONS: tuple[str, ...] = get_args(Action)

AclHook = Callable[[str, str | None, str | None, str], bool]
"""``acl_check(tenant, namespace, key, op)``: True allows the call."""


@dataclass(frozen=True)
class Principal:
    """A caller: an id and the roles it holds."""

    id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or len(self.id) > 256:
            raise ValidationError("principal.id", "must be a string of 1 to 256 chars")
        if isinstance(self.roles, str) or not isinstance(
            self.roles, frozenset | set | list | tuple
        ):
            raise ValidationError(
                "principal.roles", "must be a set of role names (not one string)"
            )
        roles = frozenset(self.roles)
        if not all(isinstance(r, str) and r for r in roles):
            raise ValidationError("principal.roles", "must be non-empty strings")
        object.__setattr__(self, "roles", roles)


class Grant(BaseModel):
    """Actions allowed to some principals or roles, in some tenants, under
    some namespace prefixes. ``"*"`` in principals, roles or tenants is any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actions: frozenset[Action]
    principals: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset({"*"})
    namespaces: tuple[str, ...] = ("",)
    """Namespace prefixes on whole segments; ``""`` is the whole tenant."""

    @field_validator("namespaces")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if prefix != prefix.strip(":") or "::" in prefix:
                msg = f"{prefix!r} is not a namespace prefix (segments split by ':')"
                raise ValueError(msg)
        return value

    def names(self, principal: Principal | None) -> bool:
        """True when the grant is for this caller."""
        if "*" in self.principals or "*" in self.roles:
            return True
        if principal is None:
            return False
        return principal.id in self.principals or bool(principal.roles & self.roles)

    def covers(self, tenant: str, namespace: str) -> bool:
        """True when the tenant is granted and a prefix covers the namespace."""
        if "*" not in self.tenants and tenant not in self.tenants:
            return False
        return any(within(namespace, prefix) for prefix in self.namespaces)


class Policy(BaseModel):
    """The grants of a store; what no grant allows is denied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grants: tuple[Grant, ...] = Field(default=())

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """A policy from a JSON file: ``{"grants": [{"actions": [...], ...}]}``."""
        try:
            data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValidationError("policy", f"cannot read {path}: {e}") from None
        return cls.model_validate(data)

    def allows(
        self, principal: Principal | None, action: str, tenant: str, namespace: str
    ) -> bool:
        """True when some grant allows the action on the namespace."""
        return any(
            action in grant.actions
            and grant.names(principal)
            and grant.covers(tenant, namespace)
            for grant in self.grants
        )


def within(namespace: str, prefix: str) -> bool:
    """True when ``namespace`` is ``prefix`` or under it, on whole segments."""
    if prefix in ("", namespace):
        return True
    return namespace.startswith(prefix) and namespace[len(prefix)] == ":"


@dataclass(frozen=True)
class Access:
    """The check a store view makes before every call."""

    policy: Policy | None = None
    hook: AclHook | None = None
    principal: Principal | None = None

    @property
    def open(self) -> bool:
        """True when nothing is configured: every call is allowed."""
        return self.policy is None and self.hook is None

    def check(
        self,
        action: str,
        tenant: str,
        namespace: str | None,
        key: str | None = None,
    ) -> None:
        """Raises AccessDenied unless the policy and the hook both allow."""
        if self.open:
            return
        assert action in ACTIONS, action
        where = namespace or ""
        allowed = self.policy is None or self.policy.allows(
            self.principal, action, tenant, where
        )
        if allowed and self.hook is not None:
            allowed = bool(self.hook(tenant, namespace, key, action))
        if not allowed:
            who = self.principal.id if self.principal is not None else "anonymous"
            raise AccessDenied(who, action, tenant, namespace)

    def check_all(
        self, action: str, tenant: str, namespaces: Iterable[str | None]
    ) -> None:
        """Checks each namespace (once)."""
        for namespace in dict.fromkeys(namespaces):
            self.check(action, tenant, namespace)


def session_namespace(app_name: str | None = None, user_id: str | None = None) -> str:
    """The namespace a session's access is checked against."""
    parts = ["session"]
    if app_name is not None:
        parts.append(app_name)
        if user_id is not None:
            parts.append(user_id)
    return ":".join(parts)
