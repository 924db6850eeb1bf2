"""The Celery app: tasks are thin wrappers over plain service functions (see STYLE.md)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")

app = Celery("xcon")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
