FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY xcon xcon
COPY exchanges exchanges
COPY monitoring monitoring
COPY orders orders
RUN pip install --no-cache-dir .
COPY . .
# Production storage (hashed names + manifest); throwaway secrets, used only for this step.
RUN DEBUG=0 ALLOWED_HOSTS=build SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    XCON_CREDENTIAL_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    python manage.py collectstatic --noinput
RUN useradd --create-home xcon && mkdir -p /app/var && chown xcon /app/var
USER xcon
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "xcon.asgi:application"]
