# syntax=docker/dockerfile:1
# One image for the scoring service, the training job and the MLflow tracking server: the same
# pinned mlflow client and server, and psycopg2 for the PostgreSQL backend store.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
# The dependencies alone, read from pyproject.toml: this layer (TensorFlow, MLflow, ...) is rebuilt
# only when pyproject.toml changes, not on every source edit. Every dependency ships as a wheel, so
# no compiler is needed here either.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --upgrade pip "setuptools>=77" \
    && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY models ./models
COPY training ./training
COPY lesson ./lesson
COPY cli ./cli
COPY service ./service
COPY data ./data
# Editable, so that the packages stay in /app beside data/: `loanrisk train` finds its default
# training set at <project>/data/credit_data.csv.
RUN pip install --no-deps --no-build-isolation -e . \
    && python -m compileall -q models training service lesson cli

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KERAS_BACKEND=tensorflow \
    TF_CPP_MIN_LOG_LEVEL=2 \
    LOANRISK_HOST=0.0.0.0 \
    LOANRISK_PORT=8000
RUN groupadd --system --gid 10001 loanrisk \
    && useradd --system --uid 10001 --gid loanrisk --create-home --home-dir /home/loanrisk \
        --shell /usr/sbin/nologin loanrisk \
    && install -d -o loanrisk -g loanrisk /var/lib/loanrisk /var/lib/loanrisk/mlartifacts
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# The working directory is the only writable place: embedded SQLite stores land here when no
# database URL is configured. Volumes mounted below it inherit the owner on first use.
WORKDIR /var/lib/loanrisk
USER loanrisk
EXPOSE 8000 5000
CMD ["loanrisk", "serve"]
