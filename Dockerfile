# clusterset's image: the hub controllers, the agent and the DNS server (`clusterset hub|agent|dns`), as the
# manifests in deploy/ run them. Build and push it where your clusters pull from:
#
#   docker build -t registry.example.com/clusterset:0.1.0 . && docker push registry.example.com/clusterset:0.1.0
#
# The package is installed from its wheel, built in the first stage. The pods run it as a non-root user on a
# read-only root filesystem (the manifests mount an emptyDir at /tmp, the only place it writes).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY clusterset ./clusterset
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels
USER 65532:65532
ENTRYPOINT ["clusterset"]
