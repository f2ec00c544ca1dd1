# Slim image for the dashboard, the one-shot migration and Flower: no torch.
#   EXTRAS=dashboard → Streamlit dashboard (+ `rnnlab db upgrade`, `rnnlab user ...`)
#   EXTRAS=flower    → Celery's Flower monitor
FROM python:3.12-slim

ARG EXTRAS=dashboard
ENV PYTHONDONTWRITEBYTECODE=1 \
    RNNLAB_AUTH=users \
    RNNLAB_USERS_FILE=/config/users.yaml \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 rnnlab \
    && mkdir -p /app/.streamlit /config \
    && chown rnnlab:rnnlab /config

WORKDIR /app
COPY . /app
# Install the project through its own extras; fail the build if torch slipped in.
RUN pip install "/app[${EXTRAS}]" \
    && if python -c "import torch" 2>/dev/null; then echo "torch must not be in this image" >&2; exit 1; fi

USER rnnlab
# 0.0.0.0 so that a published port reaches it; RNNLAB_AUTH=users above means even a bare `docker run`
# asks for sign-in (without users it only says how to add one) instead of making every visitor admin
EXPOSE 8501 5555
CMD ["streamlit", "run", "dashboard/app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
