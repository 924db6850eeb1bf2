from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Connects the breaker_changed receiver in every process (web, workers, beat).
        from monitoring import events  # noqa: F401
