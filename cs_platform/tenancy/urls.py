from django.urls import path

from cs_platform.tenancy import views

urlpatterns = [
    path("tenant/switch/", views.switch_tenant, name="switch_tenant"),
]
