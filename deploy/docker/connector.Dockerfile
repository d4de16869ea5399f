# The connector image: the pull connector (`mgrecs-connector`): the company's order API onto
# `orders`, one replica pulling, the others standing by (docs/connector.md). The field mapping
# is inside (/app/deploy/company-api-mapping.json); mount yours over it, or point
# MGRECS_CONNECTOR_MAPPING_FILE at it.
# Multi-stage: uv builds the package's virtual environment (no dev dependencies, not
# editable); the runtime stage is the slim interpreter, that environment and a user
# without privileges. Build from the repository root:
#   docker build -f deploy/docker/connector.Dockerfile -t mgrecs-connector .

FROM python:3.11-slim AS build
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
RUN uv sync --frozen --no-dev --no-editable --package mgrecs-ingest

FROM python:3.11-slim AS runtime
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 MGRECS_HOST=0.0.0.0 MGRECS_LOG_JSON=true \
    MGRECS_CONNECTOR_MAPPING_FILE=/app/deploy/company-api-mapping.json
RUN useradd --system --uid 10001 mgrecs
WORKDIR /app
COPY deploy/healthcheck.py /app/healthcheck.py
COPY deploy/company-api-mapping.json /app/deploy/company-api-mapping.json
COPY --from=build /app/.venv /app/.venv
USER 10001
EXPOSE 9103
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["python", "/app/healthcheck.py", "http://127.0.0.1:9103/healthz"]
CMD ["mgrecs-connector"]
