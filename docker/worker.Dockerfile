# Worker image: torch from the PyTorch index named by TORCH_INDEX_URL, then ".[worker]".
#   CUDA build: TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (the wheels bundle the CUDA
#               runtime; the host needs only the NVIDIA driver and the NVIDIA Container Toolkit)
#   CPU build:  TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
FROM python:3.12-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_VERSION=
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 rnnlab

# torch first, from the chosen index: the worker extra's "torch>=2.3" is then already satisfied,
# so the install below keeps this build instead of fetching the default one from PyPI.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch${TORCH_VERSION:+==${TORCH_VERSION}}"

WORKDIR /app
COPY . /app
RUN pip install "/app[worker]" \
    && python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

USER rnnlab
CMD ["rnnlab", "worker", "--queues", "cpu", "--concurrency", "1"]
