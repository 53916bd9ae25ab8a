"""The one hierarchy of errors that every mnemolog call raises."""

from __future__ import annotations


class MnemologError(Exception):
    """Root of every error mnemolog raises on purpose."""


class ValidationError(MnemologError, ValueError):
    """Input broke a rule; nothing was written."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(MnemologError, LookupError):
    """The memory (or other record) asked for does not exist."""


class VersionConflict(MnemologError):
    """The caller expected another version than the stored one; nothing was written."""

    def __init__(self, subject: str, *, expected: int, actual: int) -> None:
        super().__init__(
            f"{subject}: expected version {expected}, found {actual}; "
            "reload and retry with the current version"
        )
        self.expected = expected
        self.actual = actual


class TenantMismatch(MnemologError):
    """A call bound to one tenant named another."""


class IntegrityViolation(MnemologError):
    """The log contradicts itself: a hash chain or a stream is broken."""


class ProjectionError(MnemologError):
    """A read model could not apply an event; the write was rolled back."""


class AccessDenied(MnemologError, PermissionError):
    """The policy does not let this principal do this here; nothing was written."""

    def __init__(
        self, principal: str, action: str, tenant: str, namespace: str | None
    ) -> None:
        where = f"namespace {namespace!r}" if namespace else "the whole tenant"
        super().__init__(
            f"principal {principal!r} may not {action} {where} in tenant {tenant!r}"
        )
        self.principal = principal
        self.action = action
        self.tenant = tenant
        self.namespace = namespace


class QuotaExceeded(MnemologError):
    """The write would take a tenant past a quota; nothing was written."""

    def __init__(self, tenant: str, quota: str, limit: int, would_be: int) -> None:
        super().__init__(
            f"tenant {tenant!r}: {quota} would be {would_be}, over its quota of {limit}"
        )
        self.tenant = tenant
        self.quota = quota
        self.limit = limit
        self.would_be = would_be
