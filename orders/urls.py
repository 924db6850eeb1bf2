from django.urls import path

from orders import views

urlpatterns = [
    path("", views.desk, name="orders"),
    path("check", views.check, name="orders-check"),
    path("review", views.review, name="orders-review"),
    path("place", views.place, name="orders-place"),
    path("cancel-all", views.cancel_all, name="orders-cancel-all"),
    path("<int:pk>/", views.detail, name="order-detail"),
    path("<int:pk>/cancel", views.cancel, name="order-cancel"),
]
