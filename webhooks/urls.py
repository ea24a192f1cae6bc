from django.urls import path

from webhooks import views

urlpatterns = [
    path("settings/webhooks/", views.webhook_list, name="webhooks"),
    path("settings/webhooks/<int:webhook_id>/", views.webhook_detail, name="webhook_detail"),
    path("settings/webhooks/<int:webhook_id>/disable/", views.webhook_disable, name="webhook_disable"),
    path("settings/webhooks/<int:webhook_id>/enable/", views.webhook_enable, name="webhook_enable"),
    path(
        "settings/webhooks/<int:webhook_id>/rotate-secret/", views.webhook_rotate_secret, name="webhook_rotate_secret"
    ),
    path("settings/webhooks/<int:webhook_id>/ping/", views.webhook_ping_view, name="webhook_ping"),
    path("settings/webhooks/deliveries/<int:delivery_id>/", views.delivery_detail, name="webhook_delivery"),
    path(
        "settings/webhooks/deliveries/<int:delivery_id>/redeliver/",
        views.delivery_redeliver,
        name="webhook_delivery_redeliver",
    ),
]
