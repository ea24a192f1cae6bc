"""Celery entry points of identity: thin, they call services. Arguments are ids, never secrets: the
reset link is made in the worker, so no token ever sits in the broker."""

from __future__ import annotations

import smtplib

from celery import shared_task

from cs_platform.identity import services


@shared_task(
    name="identity.password_reset_email",
    acks_late=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=6,
)
def password_reset_email(user_id: int) -> bool:
    return services.password_reset_email_send(user_id=user_id)
