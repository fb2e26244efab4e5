# McGIP server/worker image. Build: docker build -t mcgip .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MCGIP_DATA_DIR=/data MCGIP_HOST=0.0.0.0 MCGIP_PORT=8000

RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY trainer ./trainer
COPY migrations ./migrations
COPY bench ./bench
COPY webui ./webui
RUN pip install -e . \
    && cd webui && npm ci --no-audit --no-fund --ignore-scripts

RUN useradd --create-home --uid 1000 mcgip && mkdir -p /data && chown mcgip /data
USER mcgip
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health')"
CMD ["sh", "-c", "mcgip db upgrade && mcgip serve"]
