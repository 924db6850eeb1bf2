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
RUN DEBUG=1 python manage.py collectstatic --noinput
RUN useradd --create-home xcon && mkdir -p /app/var && chown xcon /app/var
USER xcon
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "xcon.asgi:application"]
