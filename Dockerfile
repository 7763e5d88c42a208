# eventstore serve in a container (docs/operations.md).
#   docker build -t eventstore .
#   docker run -v eventstore-data:/data -p 8787:8787 eventstore
# Credentials: docker run --rm -v eventstore-data:/data eventstore token create agent-7 --role appender --streams 'agent-7/*'
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    EVENTSTORE_DB=/data/events.db
WORKDIR /src
COPY pyproject.toml README.md ./
COPY eventstore ./eventstore
COPY projections ./projections
COPY migrations ./migrations
RUN pip install '.[postgres]' && useradd --system --uid 10001 --home /data eventstore \
    && mkdir -p /data && chown eventstore /data
USER eventstore
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/readyz')"
ENTRYPOINT ["eventstore"]
CMD ["serve", "--bind", "0.0.0.0:8787", "--log-json"]
