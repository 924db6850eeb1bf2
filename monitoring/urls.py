from django.urls import path

from monitoring import metrics, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("events/", views.event_log, name="events"),
    path("rest-latency/<int:account_id>/", views.rest_latency, name="rest-latency"),
    path("metrics", metrics.metrics, name="metrics"),
]
