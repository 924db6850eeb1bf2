from django.urls import path

from orders.consumers import OrdersConsumer

websocket_urlpatterns = [
    # Channels routes ASGI apps through django's path(), whose stubs accept only views.
    path("ws/orders/", OrdersConsumer.as_asgi()),  # type: ignore[arg-type]
]
