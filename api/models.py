"""Per-tenant API tokens. Only a SHA-256 hash of the secret is stored: the plaintext is shown once."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from cs_platform.tenancy.models import TenantOwned

# Resource families an integration may be granted; each has read and write scopes, except the audit
# trail, which is append-only by construction and therefore read-only through the API too.
SCOPE_FAMILIES: dict[str, tuple[str, ...]] = {
    "accounts": ("read", "write"),
    "contacts": ("read", "write"),
    "touchpoints": ("read", "write"),
    "segments": ("read", "write"),
    "metrics": ("read", "write"),
    "health": ("read", "write"),
    "journeys": ("read", "write"),
    "compliance": ("read", "write"),
    "audit": ("read",),
}
ALL_SCOPES: tuple[str, ...] = tuple(
    f"{family}:{access}" for family, modes in SCOPE_FAMILIES.items() for access in modes
)


class ApiToken(TenantOwned):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, db_index=True)
    # Hex SHA-256 of the whole token. Looked up across tenants (the token alone names its tenant), so it
    # has its own index; the unique key leads with the tenant like every other (Citus, schema lint):
    # 256-bit hashes of random secrets do not collide across tenants either.
    key_hash = models.CharField(max_length=64, db_index=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="apitoken_tenant_created_idx")]
        constraints = [models.UniqueConstraint(fields=["tenant", "key_hash"], name="apitoken_tenant_hash_uniq")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"


class IdempotencyRecord(TenantOwned):
    """The first answer to a write sent with an `Idempotency-Key` header (api/idempotency.py): a retry
    with the same key and body gets this answer again instead of a second write. Saved in the same
    transaction as the rows it reports, so an answer is stored exactly when its rows are; the unique
    key is the backstop against concurrent duplicates. Ignored after `expires_at` and purged by
    api.idempotency.idempotency_records_purge.

    A key belongs to the credential that sent it, not to the whole tenant: two integrations (two tokens)
    choosing the same key, e.g. the day's date, are two requests. Token requests are keyed by `token`,
    browser sessions by `user` with no token. Records stored before keys were scoped have neither and
    match no request; they expire like the others."""

    endpoint = models.CharField(max_length=100, help_text="The URL name of the endpoint, e.g. api_measurements_bulk.")
    key = models.CharField(max_length=255)
    token = models.ForeignKey(
        ApiToken,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The token that sent the request; empty for a browser session.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The acting user (a token's creator, or the session's user).",
    )
    request_sha256 = models.CharField(max_length=64, help_text="Hex SHA-256 of the canonical JSON request body.")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            # One per credential kind, each partial on its credential being set: a unique index never
            # finds two NULLs equal, so a plain (tenant, endpoint, token, user, key) would let sessions
            # (token NULL) store a key twice. Tokens are keyed by token, sessions by user.
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "token", "key"],
                condition=models.Q(token__isnull=False),
                name="idempotency_tenant_token_key_uniq",
            ),
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "user", "key"],
                condition=models.Q(token__isnull=True, user__isnull=False),
                name="idempotency_tenant_user_key_uniq",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "expires_at"], name="idempotency_tenant_expires_idx")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"
