from django.urls import path

from monitoring.consumers import DashboardConsumer

websocket_urlpatterns = [
    # Channels routes ASGI apps through django's path(), whose stubs accept only views.
    path("ws/dashboard/", DashboardConsumer.as_asgi()),  # type: ignore[arg-type]
]
