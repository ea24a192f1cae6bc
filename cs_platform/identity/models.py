"""Lockout history, kept so each further lockout of the same username or address lasts longer.

django-axes counts the failures and enforces the lockout; it has no notion of a second lockout. One
row per lockout (not per failed attempt) is enough to know which step of LOGIN_LOCKOUT_STEPS applies.
Not tenant-owned: a login attempt happens before any tenant is known, and may name no real user."""

from __future__ import annotations

from django.db import models


class LoginLockout(models.Model):
    username = models.CharField(max_length=255, blank=True, help_text="The username as typed (may not exist).")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    level = models.PositiveSmallIntegerField(help_text="1 for the first lockout within the memory window, ...")
    started_at = models.DateTimeField()
    # When the lockout ends unless another attempt restarts it (axes restarts it on every attempt).
    until = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["username", "started_at"], name="loginlockout_user_idx"),
            models.Index(fields=["ip_address", "started_at"], name="loginlockout_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"lockout {self.level} of {self.username or '-'} / {self.ip_address or '-'} at {self.started_at}"
