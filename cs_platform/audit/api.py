"""REST API v1 for the audit trail: a read-only, cursor-paginated list (a client syncs forward by seq),
one event by id, and a streamed, independently verifiable export as CSV or JSON."""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import permissions, serializers
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from api.errors import ErrorSerializer, error_body
from api.filters import IdFilter, MomentFilter
from api.models import ApiToken
from api.schema import response_example
from api.viewsets import ReadOnlyTenantViewSet
from cs_platform.audit.chain import canonical, compute_hash, event_payload
from cs_platform.audit.models import AuditEvent
from cs_platform.audit.selectors import audit_events, audit_events_in_batches
from cs_platform.identity.reauth import require_recent_auth
from cs_platform.tenancy.access import role_of
from cs_platform.tenancy.models import Role

# Session users who may read the trail. Compliance officers own it (DESIGN.md, Roles) and admins run
# the tenant. Executives are read-mostly over accounts, but the trail also holds every user, token
# and settings change with before/after values: they ask compliance for an export instead.
AUDIT_READER_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE})
EXPORT_FORMATS = ("csv", "json")
# Rows fetched per query while streaming an export; memory stays constant whatever the trail's length.
EXPORT_BATCH_SIZE = 2000
# The export's columns: exactly the fields the hash covers, then the hash itself.
EXPORT_FIELDS = (
    "seq", "created_at", "tenant", "actor", "actor_label", "action", "object_type", "object_id", "before",
    "after", "prev_hash", "hash",
)  # fmt: skip

VERIFICATION_RULE = """\
**How to verify an export.** Every exported event (a JSON object in `events`, or a CSV row) holds
exactly the fields its hash covers plus `hash`:
`tenant, seq, actor, actor_label, action, object_type, object_id, before, after, created_at, prev_hash`.

1. Build the payload: the event's fields **without `hash`**, with JSON types: `tenant` and `seq` are
   integers; `actor` is an integer or `null` (system actions); `actor_label`, `action`, `object_type`,
   `object_id` (possibly empty), `created_at`, `prev_hash` are strings, taken verbatim (`created_at` is
   already canonical: UTC, microseconds, `+00:00`, e.g. `2026-11-23T17:19:28.123456+00:00`); `before` and
   `after` are JSON values (objects or `null`).
   From CSV: `tenant`, `seq` -> integers; empty `actor` -> `null`, else integer; `before`/`after` are JSON
   text -> parse them; every other column is the string as written.
2. Serialise the payload canonically: keys sorted, no whitespace (`,` and `:` separators), non-ASCII
   characters as literal UTF-8 (not `\\u` escapes), numbers as in the export; in Python
   `json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
3. `hash` must equal the lowercase hex SHA-256 of those UTF-8 bytes.
4. Chain links: events are in ascending `seq`. Each event's `prev_hash` must equal the previous event's
   `hash`, and its `seq` must be the previous `seq` + 1. The tenant's first event (seq 1) has
   `prev_hash` = 64 zeros.

**Segments.** An export filtered only by a window (`seq_after`/`seq_before`, `created_after`/
`created_before`) is a contiguous segment of the chain: verify it from its first event's `prev_hash`
(step 4 starting there instead of 64 zeros); to tie it to a previous export, check that this `prev_hash`
is the last `hash` you hold. Exports filtered by actor, action or object are not contiguous: every
event's own hash still verifies (steps 1-3), and step 4 applies wherever two events have consecutive seqs.
"""


class AuditEventFilter(filters.FilterSet):
    created_after = MomentFilter(
        field_name="created_at", lookup_expr="gte",
        help_text="Events recorded at or after this time (ISO 8601; give an offset, e.g. 2026-11-01T00:00:00Z).",
    )  # fmt: skip
    created_before = MomentFilter(
        field_name="created_at", lookup_expr="lt", help_text="Events recorded strictly before this time (ISO 8601)."
    )
    seq_after = IdFilter(
        field_name="seq", lookup_expr="gt", help_text="Events with seq greater than this (the last seq you hold)."
    )
    seq_before = IdFilter(field_name="seq", lookup_expr="lt", help_text="Events with seq less than this.")
    object_type = filters.CharFilter(help_text="The changed object's type, e.g. accounts.clientaccount.")
    object_id = filters.CharFilter(help_text="The changed object's id (with object_type).")
    actor = IdFilter(field_name="actor", help_text="The acting user's id.")
    actor_label = filters.CharFilter(lookup_expr="iexact", help_text="The acting user's email (case-insensitive).")
    action = filters.CharFilter(help_text="The action, e.g. account.create.")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


def _filter_parameters() -> list[OpenApiParameter]:
    """The list's filters, documented on the export too (drf-spectacular adds them to list views only)."""
    types = {IdFilter: OpenApiTypes.INT, MomentFilter: OpenApiTypes.DATETIME}
    return [
        OpenApiParameter(
            name, types.get(type(f), OpenApiTypes.STR), OpenApiParameter.QUERY, description=f.extra.get("help_text", "")
        )
        for name, f in AuditEventFilter.base_filters.items()
    ]


# --- Examples ----------------------------------------------------------------------------------------------
# Two consecutive events of tenant 3 (northwind): CSM 7 records a KPI value for account 42 (KPI 2,
# risk_reduction), then resolves its incident 3318, as metrics.services records them (before/after are
# model_snapshot's). Their hashes are computed here as audit_record computes them, and the second's
# prev_hash is the first's hash, so the examples verify by the export's rule.
_TENANT_ID, _ACTOR_ID, _ACTOR_LABEL = 3, 7, "jordan.lee@northwind.example"
_INCIDENT = {
    "id": 3318, "tenant_id": _TENANT_ID, "account_id": 42, "title": "Payment file rejected", "severity": "sev2",
    "opened_at": "2026-11-20T08:00:00Z", "resolved_at": None, "escalated": False, "external_ref": "JIRA-1234",
}  # fmt: skip
_EXAMPLE_EVENTS = [
    {
        "id": 60232, "seq": 1841, "action": "kpi_measurement.create", "object_type": "metrics.kpimeasurement",
        "object_id": "8876", "before": None,
        "after": {"id": 8876, "tenant_id": _TENANT_ID, "account_id": 42, "kpi_id": 2, "measured_on": "2026-11-20",
                  "value": "28.5000", "source": "api", "recorded_at": "2026-11-20T11:29:40Z"},
        "created_at": datetime.datetime(2026, 11, 20, 11, 29, 40, 120518, tzinfo=datetime.UTC),
    },
    {
        "id": 60233, "seq": 1842, "action": "incident.resolve", "object_type": "metrics.incident", "object_id": "3318",
        "before": _INCIDENT, "after": {**_INCIDENT, "resolved_at": "2026-11-20T11:30:00Z"},
        "created_at": datetime.datetime(2026, 11, 20, 11, 30, 2, 418305, tzinfo=datetime.UTC),
    },
]  # fmt: skip


def _chained(events: list[dict[str, Any]], prev_hash: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(list/retrieve row, export row) of each example event, hashed and chained from prev_hash."""
    chained = []
    for event in events:
        payload = event_payload(
            tenant_id=_TENANT_ID, seq=event["seq"], actor_id=_ACTOR_ID, actor_label=_ACTOR_LABEL,
            action=event["action"], object_type=event["object_type"], object_id=event["object_id"],
            before=event["before"], after=event["after"], created_at=event["created_at"], prev_hash=prev_hash,
        )  # fmt: skip
        export_row = {**payload, "hash": compute_hash(payload)}
        # The serializer's fields are the export's, with the row id in place of the tenant.
        api_row = {"id": event["id"], **{field: export_row[field] for field in EXPORT_FIELDS if field != "tenant"}}
        chained.append((api_row, export_row))
        prev_hash = export_row["hash"]
    return chained


# The hash of event 1840, which the first example event follows.
_EXAMPLE_CHAIN = _chained(_EXAMPLE_EVENTS, "9b74c9897bac770ffc029102a200c5de1d1b3e1a4e8d9c4b7f0e6a2d5c3b1f08")


@extend_schema_field(OpenApiTypes.DATETIME)
class CanonicalDateTimeField(serializers.Field):
    """The time exactly as the hash covers it (UTC, microseconds, +00:00), not DRF's local-time form."""

    def to_representation(self, value: datetime.datetime) -> str:
        return value.astimezone(datetime.UTC).isoformat(timespec="microseconds")


@response_example("an incident resolved", _EXAMPLE_CHAIN[1][0])
class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(
        source="actor_id", allow_null=True, read_only=True, help_text="The acting user's id; null for the system."
    )
    created_at = CanonicalDateTimeField(read_only=True)
    before = serializers.JSONField(read_only=True, allow_null=True, help_text="The object's fields before the write.")
    after = serializers.JSONField(read_only=True, allow_null=True, help_text="The object's fields after the write.")

    class Meta:
        model = AuditEvent
        fields = [
            "id", "seq", "created_at", "actor", "actor_label", "action", "object_type", "object_id", "before", "after",
            "prev_hash", "hash",
        ]  # fmt: skip
        read_only_fields = fields


class CanReadAuditTrail(permissions.BasePermission):
    """Tokens are judged by their audit:read scope (HasScope); session users by role. On one event the
    role check waits until the object is found, so another tenant's event is a 404 for every role."""

    message = "Only admins and compliance officers can read the audit trail."

    def _allowed(self, request) -> bool:
        return isinstance(request.auth, ApiToken) or role_of(request._request) in AUDIT_READER_ROLES

    def has_permission(self, request, view) -> bool:
        return getattr(view, "action", None) == "retrieve" or self._allowed(request)

    def has_object_permission(self, request, view, obj) -> bool:
        return self._allowed(request)


class ExportContentNegotiation(DefaultContentNegotiation):
    """The export writes its own CSV or JSON body and DRF renders only its JSON errors. Default
    negotiation would read `?format=csv` as a renderer override (URL_FORMAT_OVERRIDE) and answer 404,
    and `Accept: text/csv` as a media type no renderer offers (406): neither applies here."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _Echo:
    """csv.writer writes into this and gets the line back, so rows can be yielded one by one."""

    def write(self, value: str) -> str:
        return value


def _export_rows(events: Iterable[AuditEvent]) -> Iterator[dict[str, Any]]:
    for event in events:
        # The same payload the writer hashed (chain.event_payload), so the export cannot drift from it.
        row = event_payload(
            tenant_id=event.tenant_id, seq=event.seq, actor_id=event.actor_id, actor_label=event.actor_label,
            action=event.action, object_type=event.object_type, object_id=event.object_id, before=event.before,
            after=event.after, created_at=event.created_at, prev_hash=event.prev_hash,
        )  # fmt: skip
        row["hash"] = event.hash
        yield row


def _csv_stream(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for row in rows:
        cells = []
        for field in EXPORT_FIELDS:
            value = row[field]
            if field in ("before", "after"):
                value = canonical(value)  # JSON text; "null" when absent
            elif value is None:
                value = ""  # actor of system events
            cells.append(value)
        # Verbatim values (no spreadsheet formula escaping): the hash covers them exactly.
        yield writer.writerow(cells)


def _in_chunks(pieces: Iterable[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Join small pieces into ~64 KB writes: one socket write per row would dominate a 1M-row export."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer).encode("utf-8")
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def _json_stream(rows: Iterable[dict[str, Any]], header: dict[str, Any]) -> Iterator[str]:
    """One JSON object, written piecewise: `events` comes after the header fields and `count` last, so a
    download cut short is invalid JSON rather than a shorter trail that still parses."""
    yield json.dumps(header, ensure_ascii=False)[:-1] + ',"events":['
    count = 0
    for row in rows:
        yield ("," if count else "") + json.dumps(row, ensure_ascii=False)
        count += 1
    yield f'],"count":{count}}}'


def _json_header(tenant_slug: str, exported_at: datetime.datetime, filters: dict[str, str]) -> dict[str, Any]:
    """The JSON export's fields before `events` (shared with its example, which must not drift from it)."""
    return {
        "tenant_slug": tenant_slug,
        "exported_at": exported_at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
        "filters": filters,
        "verification": (
            "hash = lowercase hex SHA-256 of the UTF-8 canonical JSON (sorted keys, separators ',' and "
            "':', non-ASCII unescaped) of the event without 'hash'; each prev_hash equals the previous "
            "event's hash and seq increases by 1; seq 1 has prev_hash of 64 zeros; a window export "
            "verifies from its first event's prev_hash. Full rule: /api/docs/, audit-events export."
        ),
    }


# The export examples are written by the export's own writers, so their columns and layout are the real ones.
_EXPORT_ROWS = [export_row for _, export_row in _EXAMPLE_CHAIN]
_EXPORT_EXAMPLES = [
    OpenApiExample(
        "events 1841-1842 (seq_after=1840)", value="".join(_csv_stream(_EXPORT_ROWS)), media_type="text/csv",
        response_only=True, status_codes=["200"],
    ),
    OpenApiExample(
        "events 1841-1842 (seq_after=1840)",
        value=json.loads("".join(_json_stream(_EXPORT_ROWS, _json_header(
            "northwind", datetime.datetime(2026, 11, 23, 9, 12, 5, 331907, tzinfo=datetime.UTC), {"seq_after": "1840"}
        )))),
        media_type="application/json", response_only=True, status_codes=["200"],
    ),
]  # fmt: skip


@extend_schema_view(
    list=extend_schema(summary="List audit events (ascending seq; follow next to sync forward)"),
    retrieve=extend_schema(
        summary="One audit event",
        parameters=[OpenApiParameter("event_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    ),
)
class AuditEventViewSet(ReadOnlyTenantViewSet):
    """The tenant's append-only, hash-chained audit trail: one event per write (who, what, before and
    after, when), in seq order (1, 2, 3...), each event's `prev_hash` being the previous event's `hash`.

    Readers: tokens with the `audit:read` scope, and the tenant's admins and compliance officers when
    signed in (executives, managers, CSMs and viewers get 403). The trail covers the whole tenant, not one
    book. Sync forward by following `next`, or by `seq_after` = the last seq you hold. `created_at` is
    given exactly as the hash covers it; use the export to verify hashes."""

    scope_family = "audit"
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    lookup_url_kwarg = "event_id"
    ordering = ["seq"]
    ordering_fields = ["seq"]

    def get_permissions(self):
        return [*super().get_permissions(), CanReadAuditTrail()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no tenant
            return AuditEvent._plain.none()
        return audit_events()

    @extend_schema(
        operation_id="audit_events_export",
        summary="Export the audit trail (CSV or JSON), streamed and verifiable",
        description=(
            "The filtered trail in ascending seq order, as a file download "
            "(`Content-Disposition: attachment; filename=audit-<tenant slug>-<UTC date>.<csv|json>`), streamed "
            "in constant memory however long it is. Takes the same filters as the list; no pagination and no "
            "`ordering`.\n\n"
            "`format=json` answers one object: `tenant_slug`, `exported_at`, `filters`, `verification` (this "
            "rule, in short), then `events` (the rows) and finally `count`; a cut-off download is not valid JSON. "
            "`format=csv` answers a header row `" + ",".join(EXPORT_FIELDS) + "` and one row per event, "
            "`before`/`after` as compact JSON text. Values are verbatim (no spreadsheet formula escaping), "
            "because the hash covers them: import the file, do not open it by double-click.\n\n" + VERIFICATION_RULE
        ),
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                enum=list(EXPORT_FORMATS),
                description="The file format. (On this path `format` names the file; it is not DRF's renderer "
                "override.)",
            ),
            *_filter_parameters(),
        ],
        examples=_EXPORT_EXAMPLES,
        responses={
            400: OpenApiResponse(ErrorSerializer, description="format missing or unknown, or a filter is not valid."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV file, one row per event."),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="JSON object with `events` (see the verification rule)."
            ),
        },
    )
    @action(
        detail=False, methods=["get"], url_path="export", url_name="export", pagination_class=None,
        content_negotiation_class=ExportContentNegotiation,
    )  # fmt: skip
    def export(self, request):
        require_recent_auth(request)  # a browser session re-authenticates first; a token is its own credential
        file_format = request.query_params.get("format", "")
        if file_format not in EXPORT_FORMATS:
            message = f"Choose format={' or format='.join(EXPORT_FORMATS)}."
            return Response(
                error_body(400, "invalid", message, [{"field": "format", "code": "invalid", "message": message}]),
                status=400,
            )
        # Validates the filters now (a bad one is a 400 before any byte is streamed).
        queryset = self.filter_queryset(self.get_queryset())
        tenant = self.tenant
        now = timezone.now()
        rows = _export_rows(audit_events_in_batches(queryset, tenant_id=tenant.pk, batch_size=EXPORT_BATCH_SIZE))
        if file_format == "csv":
            stream, content_type = _csv_stream(rows), "text/csv; charset=utf-8"
        else:
            header = _json_header(
                tenant.slug, now, {k: v for k, v in request.query_params.items() if k in AuditEventFilter.base_filters}
            )
            stream, content_type = _json_stream(rows, header), "application/json"
        response = StreamingHttpResponse(_in_chunks(stream), content_type=content_type)
        filename = f"audit-{tenant.slug}-{now.astimezone(datetime.UTC):%Y-%m-%d}.{file_format}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response


def register(router) -> None:
    router.register("audit-events", AuditEventViewSet, basename="api-audit-event")


urlpatterns: list = []
