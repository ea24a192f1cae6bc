"""A tenant whose every free-text field holds attack payloads, written the way the product writes it.

Which fields: every CharField, TextField and JSONField without choices of every model of the project's
own apps, and of the user model (names, username, email), found by introspection. Each is either filled
here, through the service (or, for data only the Django admin edits, the ORM as the admin's form saves
it), or listed in EXEMPT with the reason it cannot hold typed text. Writers pass every introspected field
of their model, so a field added later is filled without editing this file (or refused by its service,
which fails the coverage test naming it); a model this file has no writer for fails the coverage test too.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.utils import timezone
from django.utils.http import urlsafe_base64_encode

from cs_platform.tenancy import context
from cs_platform.tenancy.models import Role

# --- Payloads ----------------------------------------------------------------------------------------------
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = "'\"><img src=x onerror=alert(1)>"  # out of a single- or double-quoted attribute, or none
JS_URL = "javascript:alert(1)"
# Evaluated by a template, this would print the key (were settings in reach), the context and modules
# (with DEBUG), and "tpl-evaluated": the canary the pages are searched for.
TEMPLATE = '{{ settings.SECRET_KEY }}{% debug %}{{ "tpl"|add:"-evaluated" }}'
FORMULA = "=cmd|' /C calc'!A0"
PAYLOADS = (SCRIPT, ATTRIBUTE, JS_URL, TEMPLATE, FORMULA)
EVALUATED = "tpl-evaluated"
# What an executable <script> must never contain: only a payload puts these there.
SCRIPT_MARKERS = ("alert(1)", "SECRET_KEY", "cmd|", "onerror")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\0")


def hostile_text(max_length: int | None, lead: int = 0) -> str:
    """Every payload, the `lead`-th first (so each kind starts some field: a javascript: URL or a formula
    only bites at the start), cut to the column's length."""
    text = " ".join(PAYLOADS[lead:] + PAYLOADS[:lead])
    return text[:max_length] if max_length else text


def hostile_email(local: str = "") -> str:
    """An address Django's EmailValidator accepts (a quoted local part may hold <, >, escaped quotes and
    spaces) that is markup from end to end."""
    return f'"{SCRIPT}\\"><img\\ src=x\\ onerror=alert(1)>"@{local}hostile.test'


def is_hostile(value: Any) -> bool:
    """Whether a stored value carries a payload (or a part of one that still means harm)."""
    if isinstance(value, dict):
        return any(is_hostile(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_hostile(v) for v in value)
    if not isinstance(value, str):
        return False
    return (
        any(char in value for char in "<>\"'")
        or "{{" in value
        or "{%" in value
        or "javascript:" in value.lower()
        or value.startswith(FORMULA_LEADS)
    )


# --- Which fields ------------------------------------------------------------------------------------------
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)

# (model label, field) -> why nobody can type text into it. Everything else must hold a payload.
EXEMPT: dict[tuple[str, str], str] = {
    ("tenancy.Tenant", "slug"): "lower-case letters, digits and hyphens (validated)",
    ("tenancy.Tenant", "time_zone"): "an IANA zone name (validated)",
    ("tenancy.Tenant", "mfa_required_roles"): "codes of Role (validated)",
    ("auth.User", "password"): "a password hash",
    ("audit.AuditEvent", "actor_label"): "the actor's username, filled through auth.User.username",
    ("audit.AuditEvent", "action"): "a code the services choose",
    ("audit.AuditEvent", "object_type"): "a model label",
    ("audit.AuditEvent", "object_id"): "an id or ISO week the services write",
    ("audit.AuditEvent", "before"): "a snapshot of a row filled here",
    ("audit.AuditEvent", "after"): "a snapshot of a row filled here",
    ("audit.AuditEvent", "prev_hash"): "a SHA-256",
    ("audit.AuditEvent", "hash"): "a SHA-256",
    ("audit.AuditCheckpoint", "event_hash"): "a SHA-256 copied from the chain head",
    ("audit.AuditCheckpoint", "key_id"): "the SHA-256 of the signing key's public key",
    ("audit.AuditCheckpoint", "prev_digest"): "a SHA-256 of the previous checkpoint",
    ("audit.AuditCheckpoint", "signature"): "an Ed25519 signature, hex",
    ("segments.Segment", "code"): "a slug (validated)",
    ("segments.KpiDefinition", "code"): "a slug (validated)",
    ("segments.ScorecardMeasure", "measure"): "a code of segments.health_model.MEASURES (validated)",
    ("accounts.Account", "data_standards"): "codes of DataStandard (validated)",
    ("journeys.AccountJourney", "status_reason"): "written by the nightly run from counts",
    ("metrics.KpiMeasurement", "source"): "api, csv, manual or demo, chosen by the write path",
    ("metrics.HealthSnapshot", "components"): "computed scores",
    ("metrics.NightlyRun", "summary"): "computed counts",
    ("compliance.Framework", "code"): "a slug (validated)",
    ("compliance.Evidence", "checksum_sha256"): "a SHA-256",
    ("compliance.Evidence", "content_type"): "chosen from EVIDENCE_TYPES by the file's extension",
    ("compliance.ComplianceStatusSnapshot", "counts"): "computed counts",
    ("dashboards.SegmentSnapshot", "figures"): "computed figures (names are read from their rows)",
    ("api.ApiToken", "prefix"): "generated",
    ("api.ApiToken", "key_hash"): "a SHA-256",
    ("api.ApiToken", "scopes"): "codes of ALL_SCOPES (validated)",
    ("api.IdempotencyRecord", "endpoint"): "a URL name",
    ("api.IdempotencyRecord", "request_sha256"): "a SHA-256",
    ("api.IdempotencyRecord", "response_body"): "the API's own answer",
    ("webhooks.WebhookEndpoint", "secret"): "generated",
    ("webhooks.WebhookEndpoint", "events"): "codes of SUBSCRIBABLE_EVENTS (validated)",
    ("webhooks.WebhookDelivery", "event_type"): "an event code",
    ("webhooks.WebhookDelivery", "payload"): "built from rows filled here",
    ("scorecards.ScorecardSubscription", "segment_ids"): "ids (validated)",
    ("scorecards.ScorecardDelivery", "week"): "an ISO week",
    ("scorecards.ScorecardDelivery", "message_id"): "generated",
}


def _project_models() -> list[type[models.Model]]:
    base = Path(settings.BASE_DIR).resolve()
    own = [
        config
        for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(base) and ".venv" not in Path(config.path).parts
    ]
    return [get_user_model(), *(model for config in own for model in config.get_models())]


def free_text_fields() -> dict[tuple[str, str], models.Field]:
    """(model label, field name) -> field, for every free-text field of the project's models."""
    found = {}
    for model in _project_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, TEXT_FIELDS) and not field.choices and not field.primary_key:
                found[(model._meta.label, field.name)] = field
    return found


def values_for(model: type[models.Model], *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A payload for every free-text field of `model` not exempt: each its own lead, cut to its length."""
    label = model._meta.label
    values = {}
    for index, field in enumerate(model._meta.concrete_fields):
        key = (label, field.name)
        if key in EXEMPT or field.name in skip:
            continue
        if not isinstance(field, TEXT_FIELDS) or field.choices or field.primary_key:
            continue
        lead = index % len(PAYLOADS)
        if isinstance(field, models.JSONField):
            values[field.name] = [hostile_text(None, lead), *PAYLOADS]
        elif isinstance(field, models.EmailField):
            values[field.name] = hostile_email(f"{model._meta.model_name}.")
        elif isinstance(field, models.URLField):
            continue  # a URL needs its host: the writer builds it (see webhook_url)
        else:
            values[field.name] = hostile_text(field.max_length, lead)
    return values


def webhook_url(base: str) -> str:
    """A receiver URL that is valid (no whitespace, no fragment) and markup from the path on."""
    return f"{base}/{ATTRIBUTE.replace(' ', '/')}{SCRIPT}{TEMPLATE.replace(' ', '')}"


# --- A receiver that answers with markup ---------------------------------------------------------------
class HostileReceiver:
    """An HTTP server on 127.0.0.1 answering every webhook with a 500 whose body is a payload: what a
    receiver says is shown to admins in the delivery log (the outside world, so a test double is fine)."""

    body = hostile_text(None).encode()

    def __init__(self) -> None:
        body = self.body

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(500)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HostileReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class RefusingSmtp:
    """An SMTP connection whose server fails with a message of its own: the error is shown to admins on
    the deliveries page."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages) -> int:
        raise OSError(f"421 {hostile_text(None)}")


# --- The world ---------------------------------------------------------------------------------------------
ROLES_WALKED = (Role.ADMIN, Role.EXECUTIVE, Role.COMPLIANCE, Role.CSM)


@dataclasses.dataclass
class HostileWorld:
    tenant: Any
    users: dict[str, Any]
    url_kwargs: dict[str, Any]  # URL keyword argument -> the hostile object's id (or token)
    objects: dict[str, Any]

    def user(self, role: str):
        return self.users[role]


def _admin_edit(instance: models.Model) -> None:
    """Reference data a tenant cannot edit but the platform superuser can, through the Django admin:
    every free-text field set, validated and saved as the admin's model form does."""
    for name, value in values_for(type(instance)).items():
        setattr(instance, name, value)
    instance.full_clean(exclude=["tenant"], validate_unique=False)
    instance.save()


def build(settings_fixture, media_root: Path) -> HostileWorld:  # noqa: PLR0915 - one story, written in order
    """The hostile tenant, in the test's transaction: users of every role, reference data edited as the
    platform admin would, an account owned by the CSM with a contact, a touchpoint, an open overdue blocker
    and a closed decision, a journey, a KPI value, a survey answer, an incident (and one more through the
    API's bulk ingest with an Idempotency-Key), an overdue obligation with evidence and a failed audit, an
    API token, a webhook whose receiver answers with markup and which was then disabled, a failed nightly
    run and today's real one, and this week's scorecard deliveries (one refused by the SMTP server)."""
    from accounts.services import account_create, contact_create, touchpoint_log
    from api.services import api_token_create
    from compliance.models import ComplianceStatusSnapshot, Framework, Requirement
    from compliance.services import audit_result_record, evidence_add, obligation_create
    from cs_platform.identity.services import membership_create, membership_set_manager
    from journeys.models import JourneyTemplate, PhaseActivity, SuccessCriterion
    from journeys.services import account_journey_start, decision_create, decision_resolve
    from metrics.models import NightlyRun
    from metrics.services import incident_open, kpi_measurement_record, survey_response_record
    from nightly.pipeline import fail_run, run_tenant
    from provisioning.services import tenant_create
    from scorecards import delivery as scorecard_delivery
    from scorecards import services as scorecard_services
    from scorecards.recipients import recipient_now
    from scorecards.tokens import unsubscribe_url
    from scorecards.weeks import IsoWeek
    from segments.models import Scorecard, Segment
    from segments.services import kpi_definition_create, segment_update
    from tests import factories
    from webhooks import delivery as webhook_delivery
    from webhooks import services as webhook_services

    settings_fixture.SCORECARD_WEEKDAY = timezone.localdate().isoweekday()  # this week's figures are today's
    settings_fixture.WEBHOOK_ALLOW_HTTP = True  # the receiver below listens on http://127.0.0.1
    settings_fixture.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings_fixture.MEDIA_ROOT = media_root  # the evidence file
    today = timezone.localdate()
    User = get_user_model()  # noqa: N806

    users = {}
    for index, role in enumerate(Role.values):
        # A username may start with a formula lead (Django allows [\w.@+-]): the audit CSV's actor_label.
        user = User(
            username=f"-2+3+{role}@hostile.test",
            email=hostile_email(f"{role}."),
            **values_for(User, skip=("username", "email", "first_name")),
            first_name=hostile_text(150, index % 5),
        )
        user.set_password(factories.TEST_PASSWORD)
        user.full_clean()  # as the admin's user form validates it
        user.save()
        users[role] = user
    admin = users[Role.ADMIN]
    tenant = tenant_create(slug="hostile", actor=None, **values_for(type_of("tenancy.Tenant")))
    memberships = {role: membership_create(tenant=tenant, user=users[role], role=role) for role in Role.values}
    membership_set_manager(tenant=tenant, membership=memberships[Role.CSM], manager=memberships[Role.MANAGER])
    csm = users[Role.CSM]

    with context.tenant_context(tenant):
        bank = Segment.objects.get(code="bank")
        template = JourneyTemplate.objects.filter(is_reference=True).order_by("pk").first()
        phase = template.phases.order_by("order").first()
        requirement = factories.requirement_of(tenant)
        for instance in (
            template,
            phase,
            PhaseActivity.objects.filter(phase=phase).order_by("order").first(),
            SuccessCriterion.objects.filter(phase=phase).order_by("order").first(),
            Framework.objects.get(pk=requirement.framework_id),
            Requirement.objects.get(pk=requirement.pk),
        ):
            _admin_edit(instance)
        requirement = Requirement.objects.get(pk=requirement.pk)
    segment_values = values_for(Segment)
    segment_values["success_factors"] = [{"name": p, "description": p} for p in PAYLOADS]
    bank = segment_update(tenant=tenant, segment=bank, actor=admin, **segment_values)
    kpi = kpi_definition_create(
        tenant=tenant,
        segment=bank,
        actor=admin,
        code="hostile-kpi",
        direction="higher",
        comparator="gte",
        target_low=Decimal("50"),
        weight=Decimal("10"),
        **values_for(type_of("segments.KpiDefinition")),
    )

    account = account_create(
        tenant=tenant,
        actor=admin,
        segment=bank,
        owner_csm=csm,
        arr=Decimal("250000"),
        contract_start=today - datetime.timedelta(days=400),
        renewal_date=today + datetime.timedelta(days=30),
        **values_for(type_of("accounts.Account")),
    )
    contact = contact_create(tenant=tenant, account=account, actor=csm, **values_for(type_of("accounts.Contact")))
    touchpoint = touchpoint_log(
        tenant=tenant,
        account=account,
        actor=csm,
        kind="meeting",
        contact=contact,
        occurred_at=timezone.now() - datetime.timedelta(hours=2),
        **values_for(type_of("accounts.Touchpoint")),
    )
    decision_values = values_for(type_of("journeys.Decision"), skip=("resolution",))
    decision = decision_create(
        tenant=tenant,
        account=account,
        owner=csm,
        kind="blocker",
        due_date=today - datetime.timedelta(days=3),
        actor=csm,
        **decision_values,
    )
    closed = decision_create(
        tenant=tenant,
        account=account,
        owner=csm,
        due_date=today + datetime.timedelta(days=3),
        actor=csm,
        **decision_values,
    )
    resolution = values_for(type_of("journeys.Decision"))["resolution"]
    decision_resolve(tenant=tenant, decision=closed, resolution=resolution, actor=csm)
    journey = account_journey_start(tenant=tenant, account=account, template=template, started_on=today, actor=csm)
    measurement = kpi_measurement_record(
        tenant=tenant, account=account, kpi=kpi, measured_on=today, value=Decimal("60"), actor=csm
    )
    survey = survey_response_record(
        tenant=tenant,
        account=account,
        survey_type="nps",
        score=3,
        responded_on=today,
        contact=contact,
        actor=csm,
        **values_for(type_of("metrics.SurveyResponse")),
    )
    incident = incident_open(
        tenant=tenant, account=account, severity="sev1", actor=csm, **values_for(type_of("metrics.Incident"))
    )
    obligation = obligation_create(
        tenant=tenant,
        account=account,
        requirement=requirement,
        due_date=today - datetime.timedelta(days=5),
        owner=users[Role.COMPLIANCE],
        actor=users[Role.COMPLIANCE],
    )
    # A browser sends the file's own name; Django keeps its last path segment, so no "/" in it.
    filename = hostile_text(200, 1).replace("/", "") + ".txt"
    evidence = evidence_add(
        tenant=tenant,
        obligation=obligation,
        upload=SimpleUploadedFile(filename, b"Evidence of control 1.\n"),
        valid_from=today - datetime.timedelta(days=300),
        valid_until=today + datetime.timedelta(days=10),
        actor=users[Role.COMPLIANCE],
    )
    audit_result = audit_result_record(
        tenant=tenant,
        obligation=obligation,
        audited_on=today - datetime.timedelta(days=2),
        outcome="failed",
        open_findings=2,
        actor=users[Role.COMPLIANCE],
        **values_for(type_of("compliance.AuditResult")),
    )
    token, _ = api_token_create(
        tenant=tenant, scopes=["accounts:read"], actor=admin, **values_for(type_of("api.ApiToken"))
    )

    # Last week green, so tonight's score makes the account a mover in the email and on the portfolio.
    factories.HealthSnapshotFactory(
        tenant=tenant, account=account, snapshot_date=today - datetime.timedelta(days=7), band="green", total="95"
    )
    yesterday = today - datetime.timedelta(days=1)
    with context.tenant_context(tenant):
        NightlyRun.objects.create(tenant=tenant, run_date=yesterday)
    # An exception message may quote whatever data made a run fail; fail_run records it for admins.
    fail_run(tenant=tenant, day=yesterday, exc=RuntimeError(values_for(NightlyRun)["error"]))
    run_tenant(tenant=tenant, day=today)

    with HostileReceiver() as receiver:
        endpoint_values = values_for(type_of("webhooks.WebhookEndpoint"), skip=("disabled_reason",))
        endpoint, _ = webhook_services.webhook_endpoint_create(
            tenant=tenant,
            url=webhook_url(receiver.base),
            events=["health.band_changed"],
            actor=admin,
            **endpoint_values,
        )
        answered = webhook_services.webhook_ping(tenant=tenant, endpoint=endpoint, actor=admin)
        refused = webhook_services.webhook_ping(tenant=tenant, endpoint=endpoint, actor=admin)
        webhook_delivery.delivery_attempt(tenant=tenant, delivery_id=answered.pk, attempt=1)  # the hostile answer
    endpoint = webhook_services.webhook_endpoint_update(
        tenant=tenant,
        endpoint=endpoint,
        actor=admin,
        is_active=False,
        disabled_reason=values_for(type_of("webhooks.WebhookEndpoint"))["disabled_reason"],
    )
    # Disabled with that reason before its first attempt: the attempt's error quotes the reason.
    webhook_delivery.delivery_attempt(tenant=tenant, delivery_id=refused.pk, attempt=1)

    from django.test import Client

    api = Client()
    api.force_login(admin)
    api.get("/accounts/")  # settles the session's tenant
    bulk = api.post(
        "/api/v1/incidents/bulk",
        {"rows": [{"account": account.pk, "severity": "sev3", **values_for(type_of("metrics.Incident"))}]},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=values_for(type_of("api.IdempotencyRecord"))["key"],
    )
    assert bulk.status_code == 201, bulk.content
    # A stranger's failed logins under a hostile name lock that name out: the lockout keeps it as typed.
    stranger, typed = Client(), hostile_text(150, 1)  # the login form takes a username's length
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        stranger.post("/login/", {"username": typed, "password": "x"})

    week = IsoWeek.of(today)
    for role in ROLES_WALKED:
        scorecard_services.scorecard_subscription_update(
            tenant=tenant, user=users[role], enabled=True, segment_ids=[], actor=users[role]
        )
    prepared = scorecard_delivery.scorecard_deliveries_prepare(tenant=tenant, week=week)
    with context.tenant_context(tenant):
        recipients = {role: recipient_now(users[role].pk) for role in ROLES_WALKED}
    # The SMTP server's refusal is what an admin reads on the deliveries page.
    failing = prepared.sendable_ids[0]
    scorecard_delivery.scorecard_delivery_send(tenant=tenant, delivery_id=failing, connection=RefusingSmtp())

    with context.tenant_context(tenant):
        activity = journey.activity_progress.order_by("pk").first()
        status = ComplianceStatusSnapshot.objects.filter(account=account).order_by("-snapshot_date").first()
        scorecard = Scorecard.objects.get(segment=bank)
    from cs_platform.audit.models import AuditEvent

    with context.tenant_context(tenant):
        event = AuditEvent.objects.filter(action="account.create").get()
    url_kwargs = {
        "account_id": account.pk,
        "scorecard_id": scorecard.pk,
        "segment_id": bank.pk,
        "decision_id": decision.pk,
        "activity_id": activity.pk,
        "obligation_id": obligation.pk,
        "evidence_id": evidence.pk,
        "audit_result_id": audit_result.pk,
        "status_id": status.pk,
        "token_id": token.pk,
        "contact_id": contact.pk,
        "touchpoint_id": touchpoint.pk,
        "kpi_id": kpi.pk,
        "measurement_id": measurement.pk,
        "survey_id": survey.pk,
        "incident_id": incident.pk,
        "journey_id": journey.pk,
        "event_id": event.pk,
        "webhook_id": endpoint.pk,
        "delivery_id": answered.pk,
        "token": unsubscribe_url(tenant, users[Role.EXECUTIVE]).rstrip("/").split("/")[-1],
        # The password reset link's user; its token (the unsubscribe one above) is not a reset token, so the
        # page walked is the "link no longer valid" answer.
        "uidb64": urlsafe_base64_encode(str(users[Role.CSM].pk).encode()),
    }
    objects = {"account": account, "decision": decision, "closed": closed, "week": week, "recipients": recipients}
    return HostileWorld(tenant=tenant, users=users, url_kwargs=url_kwargs, objects=objects)


def type_of(label: str) -> type[models.Model]:
    return apps.get_model(label)


def unfilled_fields(world: HostileWorld) -> list[str]:
    """Every free-text field not exempt that no row of the hostile tenant (or its users) holds a payload in."""
    missing = []
    for (label, name), field in sorted(free_text_fields().items()):
        if (label, name) in EXEMPT:
            continue
        model = field.model
        if model is get_user_model():
            rows = model.objects.filter(pk__in=[u.pk for u in world.users.values()])
        elif label == "tenancy.Tenant":
            rows = model.objects.filter(pk=world.tenant.pk)
        else:
            with context.tenant_context(world.tenant):
                rows = list(model.objects.values_list(name, flat=True))
            if not any(is_hostile(value) for value in rows):
                missing.append(f"{label}.{name}")
            continue
        if not any(is_hostile(value) for value in rows.values_list(name, flat=True)):
            missing.append(f"{label}.{name}")
    return missing
