from django.urls import path

from accounts import views

urlpatterns = [
    path("<int:account_id>/", views.account_detail, name="account_detail"),
]
