from django.urls import path

from compliance import views

urlpatterns = [
    path("", views.compliance_dashboard, name="compliance_dashboard"),
    path("obligations/<int:obligation_id>/evidence/", views.evidence_upload, name="evidence_upload"),
    path("evidence/<int:evidence_id>/download/", views.evidence_download, name="evidence_download"),
]
