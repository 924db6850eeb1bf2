"""xcon settings: one module, every deployment-specific value read from the environment.

A fresh checkout runs with no environment at all (DEBUG on, SQLite under var/, keys generated
into var/). With DEBUG off (production) the secrets must come from the environment and the
process refuses to start without them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from xcon.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("XCON_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)


def _dev_secret(filename: str, make: Callable[[], str]) -> str:
    """A per-checkout secret kept in var/, so a demo needs no setup and never ships one."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY", "") or _dev_secret(
        "dev-secret-key", lambda: secrets.token_urlsafe(50)
    )
    _credential_keys = env_list("XCON_CREDENTIAL_KEYS") or [
        _dev_secret("dev-credential-key", lambda: Fernet.generate_key().decode())
    ]
else:
    SECRET_KEY = env_str("SECRET_KEY")
    _credential_keys = env_list("XCON_CREDENTIAL_KEYS")
    if not _credential_keys:
        raise ImproperlyConfigured(
            "XCON_CREDENTIAL_KEYS is required in production: one or more Fernet keys, "
            "comma-separated, newest first."
        )
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production.")

for _key in _credential_keys:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "XCON_CREDENTIAL_KEYS holds a value that is not a Fernet key "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')."
        ) from None
XCON_CREDENTIAL_KEYS: list[str] = _credential_keys

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required in production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "exchanges",
    "monitoring",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "xcon.urls"
ASGI_APPLICATION = "xcon.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'xcon.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # a kept connection is checked before each use (worker processes keep theirs: the
        # Procfile and docker-compose.yml set DATABASE_CONN_MAX_AGE for them)
        conn_health_checks=True,
    )
}
# The order's claim and ack statements are prepared on their connection (orders/fastpath.py);
# off behind a transaction-pooling PgBouncer without max_prepared_statements.
XCON_DB_PREPARE = env_bool("XCON_DB_PREPARE", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default is written by the web server and the worker at once. WAL lets
    # readers run beside the one writer; IMMEDIATE takes the write lock when a transaction
    # starts, so two writers queue on the busy timeout instead of one failing with "database
    # is locked" when it upgrades a read lock (which SQLite cannot wait for).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("XCON_SQLITE_BUSY_TIMEOUT_S", 20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Named explicitly so that processes forked by live-server tests (daphne) find the same
    # test database instead of prefixing "test_" a second time.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        # Pub/sub layer: one publish per group and local fan-out in each daphne process, and no
        # group members left behind by a crashed consumer (see shared/notes/stack.md).
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                # redis-py 8 times reads out after 5 s and caps async pools at 100 connections:
                # an idle consumer would crash and 200 clients would fail without these.
                {"address": REDIS_URL, "socket_timeout": None, "max_connections": 1000}
            ],
            "prefix": env_str("XCON_CHANNEL_PREFIX", "xcon"),
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "xcon-cache",
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Acknowledged on receipt by default; the order tasks whose claim makes a second delivery
# harmless (submit, resolve, cancel) ask for late acknowledgement themselves (orders/tasks.py).
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a task not acknowledged within the visibility timeout, and a task with a
# countdown is held unacknowledged until it is due: the timeout must stay above the longest
# countdown used (orders.placement.MAX_COUNTDOWN_S; tests/test_orders_recovery.py checks it)
# or due-later tasks would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("XCON_CELERY_VISIBILITY_TIMEOUT_S", 600)
}
CELERY_TASK_DEFAULT_QUEUE = env_str("XCON_CELERY_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)


def _every(task: str, period_s: float) -> dict[str, object]:
    """A beat entry that expires after its period: a worker back from an outage runs the
    next one, not the backlog beat queued meanwhile."""
    return {"task": task, "schedule": period_s, "options": {"expires": period_s}}


XCON_ENSURE_STREAMS_EVERY_S = _ENSURE_EVERY_S = float(env_int("XCON_ENSURE_STREAMS_EVERY_S", 3))
CELERY_BEAT_SCHEDULE = {
    "ensure-streams": _every("monitoring.tasks.ensure_streams", _ENSURE_EVERY_S),
    "send-alerts": _every("monitoring.tasks.send_alerts", 5.0),
    "ensure-order-streams": _every("orders.tasks.ensure_order_streams", _ENSURE_EVERY_S),
    "reconcile-orders": _every("orders.tasks.reconcile_orders", 15.0),
}

# Orders (orders/placement.py). An order confirmed longer ago than XCON_ORDER_MAX_SEND_AGE_S
# is never sent: it expires, so an outage does not fire stale orders when it ends. A claimed
# send that has not recorded the venue's answer XCON_ORDER_SEND_DEADLINE_S after its claim is
# abandoned (the sender gives up by then; a dead one cannot answer) and the order is looked
# up by its client order id.
XCON_ORDER_MAX_SEND_AGE_S = float(env_str("XCON_ORDER_MAX_SEND_AGE_S", "60"))
XCON_ORDER_SEND_DEADLINE_S = float(env_str("XCON_ORDER_SEND_DEADLINE_S", "20"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# DEBUG: serve static files straight from the apps and static/ (no collectstatic needed).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "xcon <xcon@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
XCON_ALERT_RECIPIENTS = env_list("XCON_ALERT_RECIPIENTS")
XCON_METRICS_TOKEN = env_str("XCON_METRICS_TOKEN", "")
# Where alert emails link to (the event log): the public URL of this deployment.
XCON_BASE_URL = env_str("XCON_BASE_URL", "http://localhost:8000")

# Security: strict by default outside DEBUG so `manage.py check --deploy` passes.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # ccxt logs whole requests (headers included) at DEBUG when verbose: never let it.
        "ccxt": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # Celery logs every task received and finished, and beat every task it sends: the
        # periodic ones several times a second together. Routine, not news; their failures
        # are still logged (ERROR). Our own loggers keep INFO: stream up/down, breaker, orders.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}

# How the live dashboard batches ticker pushes (seconds): every changed row is sent once per
# window, never every tick to every browser.
XCON_PUSH_WINDOW_S = float(env_str("XCON_PUSH_WINDOW_S", "0.25"))

# WebSocket heartbeat of the market-data streams (seconds): a connection that answers no ping
# for this long is declared dead and redialled, within twice this after it went silent
# (monitoring/streams.py). An account overrides it with ccxt_options {"ws": {"keepAlive": ms,
# "maxPingPongMisses": n}} (heartbeat = keepAlive x misses).
XCON_WS_HEARTBEAT_S = float(env_str("XCON_WS_HEARTBEAT_S", "5"))

# Venue clock checks by the stream holder (monitoring/holder.py): every XCON_CLOCK_EVERY_S the
# holder measures venue time minus ours (median of a few round trips), stores it on the account
# and records a "clock_skew" health event while |offset| exceeds XCON_CLOCK_SKEW_MS. Binance
# refuses signed requests more than recvWindow (10 s) off; 1 s leaves room to act.
XCON_CLOCK_EVERY_S = float(env_str("XCON_CLOCK_EVERY_S", "60"))
# The venue's own status (online, maintenance, cancel-only, …; monitoring/venuestatus.py) is
# polled by the same unit every XCON_VENUE_STATUS_EVERY_S (0: never).
XCON_VENUE_STATUS_EVERY_S = float(env_str("XCON_VENUE_STATUS_EVERY_S", "15"))
XCON_CLOCK_SKEW_MS = float(env_str("XCON_CLOCK_SKEW_MS", "1000"))

# Limiter health events (monitoring/events.py LimiterWatch): "limit_near" once the account's
# fullest rate-limit pool reaches XCON_LIMIT_NEAR_PCT %; "rate_limited" / "banned" after a new
# 429 / 418 or while the venue's pause / ban lasts, cleared once none came for
# XCON_LIMIT_QUIET_S seconds.
XCON_LIMIT_NEAR_PCT = float(env_str("XCON_LIMIT_NEAR_PCT", "80"))
XCON_LIMIT_QUIET_S = float(env_str("XCON_LIMIT_QUIET_S", "30"))

# Order books and trades are streamed for an account's first this-many watched symbols (by
# position); tickers for all of them.
XCON_DEPTH_SYMBOLS = env_int("XCON_DEPTH_SYMBOLS", 20)

# Stream units and their fair share among workers (monitoring/share.py). Each account's
# channels are separate units, each under its own lease; an account's tickers are split into
# chunks of XCON_TICKER_CHUNK_SYMBOLS symbols, one unit each (Binance allows 1024 streams per
# connection). A unit moves from the busiest worker to the idlest once they hold
# 2 + XCON_STREAM_SHARE_SLACK or more units apart.
XCON_TICKER_CHUNK_SYMBOLS = env_int("XCON_TICKER_CHUNK_SYMBOLS", 200)
XCON_STREAM_SHARE_SLACK = env_int("XCON_STREAM_SHARE_SLACK", 0)
# Units one worker's stream host holds at most (exchanges/streaming/host.py: one event loop
# beside the Celery pool, so streams never take the threads order tasks need).
XCON_STREAM_UNITS_PER_WORKER = env_int("XCON_STREAM_UNITS_PER_WORKER", 64)
