"""System checks of the audit trail's configuration."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security)
def development_signing_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.AUDIT_SIGNING_KEY != settings.AUDIT_DEVELOPMENT_SIGNING_KEY:
        return []
    return [
        checks.Warning(
            "Audit checkpoints are signed with the public development key: anyone can forge them.",
            hint="Set AUDIT_SIGNING_KEY (python manage.py audit_signing_key makes one). Settings refuse to start "
            "without it unless DEBUG is true.",
            id="audit.W001",
        )
    ]
