# One image for the four nnmon processors; compose.yaml picks the subcommand:
#   docker build -t nnmon:local .
#   docker run --rm nnmon:local --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

WORKDIR /app

# The dependencies first, in a layer of their own: it is rebuilt only when
# pyproject.toml changes, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (no dependencies left to fetch).
COPY README.md ./
COPY streams/ streams/
COPY processors/ processors/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info

# Not root. The uid matches the usual first user of a Linux host, so the
# ./logs bind mount of compose.yaml is writable; build with
# `--build-arg NNMON_UID=$(id -u) --build-arg NNMON_GID=$(id -g)` if yours differs.
ARG NNMON_UID=1000
ARG NNMON_GID=1000
RUN groupadd --gid "${NNMON_GID}" nnmon \
    && useradd --no-log-init --create-home --uid "${NNMON_UID}" --gid nnmon nnmon \
    && mkdir -p /app/logs \
    && chown nnmon:nnmon /app/logs
USER ${NNMON_UID}:${NNMON_GID}

# Build matplotlib's font cache now, not at every container's first plot.
RUN python -c "import matplotlib.pyplot"

ENV NNMON_LOGS_DIR=/app/logs

ENTRYPOINT ["nnmon"]
CMD ["--help"]
