# flasher service image: `docker run ... flasher` runs `flasher run` with settings from
# /etc/flasher/flasher.yaml (mount your own) and FLASHER_* environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY flasher ./flasher
COPY flasher_sandbox ./flasher_sandbox
RUN pip install . && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /var/lib/flasher --create-home flasher \
    && mkdir -p /etc/flasher /var/cache/flasher \
    && chown flasher /var/cache/flasher
COPY config/flasher.yaml /etc/flasher/flasher.yaml

USER flasher
WORKDIR /var/lib/flasher
ENV FLASHER_CONFIG=/etc/flasher/flasher.yaml \
    FLASHER_STORE__CACHE_DIR=/var/cache/flasher

EXPOSE 9090 8890
ENTRYPOINT ["flasher", "run"]
