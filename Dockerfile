# syntax=docker/dockerfile:1
#
# One image for the four services (and the VK sandbox); the argument picks the module:
#   docker build -t vk-planner-backbone .
#   docker run --rm vk-planner-backbone services.refresher
#   docker run --rm vk-planner-backbone tools.vk_sandbox --host 0.0.0.0 --demo
# Configuration comes from environment variables (README.md, "Configuration").

# Both stages must use the same interpreter: the venv built in `build` points at it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Keep in step with UV_VERSION in the Makefile (tests/deploy checks it).
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- build: resolve the locked runtime dependencies into /opt/venv ------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Only the lock and the project file: the dependency layer is rebuilt when they change,
# not on every source edit. --no-dev leaves out the test tools and the mongod wheel.
# Absolute mount targets: buildah (podman build) rejects relative ones.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    uv sync --frozen --no-dev --no-install-project

# --- runtime: the interpreter, the venv and the source; no uv, no build tools ---------
FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
LABEL org.opencontainers.image.title="vk-planner-backbone" \
      org.opencontainers.image.description="Event backbone of a content planner for VK communities"
RUN groupadd --system --gid "${APP_UID}" planner \
    && useradd --system --uid "${APP_UID}" --gid planner --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin planner
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY shared/ ./shared/
COPY services/ ./services/
COPY tools/ ./tools/
# Byte-compile as root: the code stays read-only for the service user.
RUN python -m compileall -q /app
ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEALTH_PORT=9090
# Numeric, so Kubernetes can verify runAsNonRoot.
USER ${APP_UID}:${APP_UID}
# callback_gateway, update_notifier, the consumers' health side port (HEALTH_PORT).
EXPOSE 8080 8081 9090
ENTRYPOINT ["python", "-m"]
CMD ["services.callback_gateway"]
