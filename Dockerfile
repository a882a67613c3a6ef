# syntax=docker/dockerfile:1.7
# One image for every service and role of Một Cửa; the command chooses which:
#   motcua api --service dossier --host 0.0.0.0 --port 8080
#   motcua worker --service dossier        motcua relay --service dossier
#   motcua prepare --service dossier       motcua topology
# Build: docker build -t motcua:0.1.0 .

# The base is pinned to an exact release; the release pipeline should pin its digest too
# (python:3.11.14-slim-bookworm@sha256:...), which cannot be resolved without a registry.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: install the project and its dependencies into a virtual environment ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/motcua
WORKDIR /src
# Only what the build reads (.dockerignore keeps tests and local state out).
COPY pyproject.toml README.md ./
COPY requirements/runtime.txt ./requirements/runtime.txt
COPY libs ./libs
COPY services ./services
# The locked, hash-checked dependencies first (the versions the suite tested), then the
# platform's own wheel — the artefact CI tests — without letting pip choose anything else.
# Every dependency ships a manylinux wheel, so no compiler is needed even here. pip
# compiles the bytecode now: the running container's root filesystem is read-only.
RUN /opt/motcua/bin/pip install --require-hashes -r requirements/runtime.txt \
 && /opt/motcua/bin/pip wheel --no-deps -w /tmp/dist . \
 && /opt/motcua/bin/pip install --no-deps /tmp/dist/motcua-*.whl \
 && /opt/motcua/bin/pip uninstall -y pip

# --- runtime: the virtual environment and an unprivileged user, nothing else ---------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="motcua" \
      org.opencontainers.image.description="Một Cửa: the ward one-stop-shop platform (identity, dossier, queue, notify, rating)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Result PDFs embed DejaVu Sans: it has every Vietnamese letter and tone mark
# (services/dossier/result_pdf.py). Fonts only; no build tool enters this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid, so Kubernetes can check runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 10001 motcua \
 && useradd --system --uid 10001 --gid motcua --home-dir /var/lib/motcua --no-create-home \
            --shell /usr/sbin/nologin motcua \
 && install -d -o motcua -g motcua -m 0750 /var/lib/motcua

COPY --from=build /opt/motcua /opt/motcua

ENV PATH=/opt/motcua/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MOTCUA_DATA_DIR=/var/lib/motcua

USER 10001:10001
WORKDIR /var/lib/motcua
# 8080: an API (gunicorn). 9100: a worker's or relay's metrics when METRICS_PORT=9100.
EXPOSE 8080 9100
ENTRYPOINT ["motcua"]
CMD ["api", "--all", "--host", "0.0.0.0", "--port", "8080"]
