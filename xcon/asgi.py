"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets are authenticated from the Django session and checked against ALLOWED_HOSTS for
their Origin, so another site cannot open a socket with a logged-in user's cookie.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from monitoring.routing import websocket_urlpatterns as monitoring_ws  # noqa: E402
from orders.routing import websocket_urlpatterns as orders_ws  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            # the patterns hold ASGI apps (see the routing modules); their stub type says views
            AuthMiddlewareStack(URLRouter(monitoring_ws + orders_ws))  # type: ignore[arg-type]
        ),
    }
)
