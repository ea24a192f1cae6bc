from django.urls import path

from dashboards import views

urlpatterns = [
    path("accounts/", views.account_list, name="account_list"),
    path("accounts/<int:account_id>/", views.account_detail, name="account_detail"),
    path("portfolio/", views.portfolio, name="portfolio"),
    path("portfolio/segments/<int:segment_id>/", views.segment_page, name="segment_page"),
]
