from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from accounts import selectors


@login_required
def account_detail(request, account_id: int):
    account = selectors.account_detail(request.user, account_id, request.membership) if request.membership else None
    if account is None:
        # Another tenant's account, or one outside the user's book: the same 404, no hint.
        raise Http404("No such account.")
    from metrics.selectors import health_trend, latest_health_explained

    health = latest_health_explained(request.user, account_id=account.pk, membership=request.membership)
    trend = None
    if health is not None:
        trend = health_trend(
            request.user, account_id=account.pk, until=health["snapshot"].snapshot_date, membership=request.membership
        )
    # The chart's text equivalent: the same points as table rows.
    trend_rows = list(zip(trend["dates"], trend["totals"], trend["bands"], strict=True)) if trend else []
    return render(
        request,
        "accounts/detail.html",
        {"account": account, "health": health, "trend": trend, "trend_rows": trend_rows},
    )
