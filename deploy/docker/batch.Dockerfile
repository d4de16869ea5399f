# The batch image: a batch worker (ticks and infer shards).
# Multi-stage: uv builds the package's virtual environment (no dev dependencies, not
# editable); the runtime stage is the slim interpreter, that environment and a user
# without privileges. Build from the repository root:
#   docker build -f deploy/docker/batch.Dockerfile -t mgrecs-batch .

FROM python:3.11-slim AS build
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
RUN uv sync --frozen --no-dev --no-editable --package mgrecs-batch

FROM python:3.11-slim AS runtime
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 MGRECS_HOST=0.0.0.0 MGRECS_LOG_JSON=true \
    MGRECS_ARTIFACT_DIR=/data/artifacts
RUN useradd --system --uid 10001 mgrecs && mkdir -p /data/artifacts && chown -R mgrecs /data
WORKDIR /app
COPY deploy/healthcheck.py /app/healthcheck.py
COPY --from=build /app/.venv /app/.venv
USER 10001
EXPOSE 9102
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["python", "/app/healthcheck.py", "http://127.0.0.1:9102/healthz"]
CMD ["mgrecs-batch"]
