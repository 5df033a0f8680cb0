# One image for the four nnmon processors; compose.yaml picks the subcommand:
#   docker build -t nnmon:local .
#   docker run --rm nnmon:local --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/app/.matplotlib

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
COPY monitor/ monitor/
COPY streams/ streams/
COPY processors/ processors/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info

# The entrypoint starts as root only to give the processors the mounted logs
# folder, then runs nnmon as the folder's owner (as nnmon, uid 1000, when it
# belongs to root): no process keeps root. matplotlib's font cache is built
# now, in a folder every user may use, not at every container's first plot.
RUN groupadd --gid 1000 nnmon \
    && useradd --no-log-init --create-home --uid 1000 --gid nnmon nnmon \
    && mkdir -p /app/logs "${MPLCONFIGDIR}" \
    && chown nnmon:nnmon /app/logs \
    && python -c "import matplotlib.pyplot" \
    && chmod -R a+rwX "${MPLCONFIGDIR}"
COPY scripts/container-entrypoint /usr/local/bin/nnmon-entrypoint

ENV NNMON_LOGS_DIR=/app/logs

ENTRYPOINT ["nnmon-entrypoint"]
CMD ["--help"]
