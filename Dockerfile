# A Beam SDK worker container for running vlforge pipelines on Dataflow, Flink or Spark
# (custom container: --sdk_container_image=IMAGE, or --environment_type=DOCKER
# --environment_config=IMAGE on portable runners). Build from the repository root:
#   docker build -t REGISTRY/vlforge-worker:$(git rev-parse --short HEAD) .
# System packages and Python extras must match the Makefile and pyproject.toml
# (tests/engines/test_packaging.py checks that).
FROM apache/beam_python3.11_sdk:2.77.0

# Chromium (web screenshots), Tesseract (OCR backend), fonts (PDF and chart rendering).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       chromium chromium-headless-shell tesseract-ocr fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/vlforge
COPY pyproject.toml setup.py README.md ./
COPY pipelines ./pipelines
COPY taxonomy ./taxonomy
COPY model ./model
COPY training ./training
# torch first, pinned CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir ".[distributed]"

# The Beam image's entrypoint (/opt/apache/beam/boot) starts the SDK harness; keep it.
