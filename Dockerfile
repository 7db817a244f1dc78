# The worker image: `journey` on Python 3.11 with the package and its schemas.
#   docker build -t journey-stream .
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY schemas ./schemas
COPY policies ./policies
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 journey \
    && mkdir -p /state && chown journey /state
USER journey
ENV JOURNEY_DATA_DIR=/state \
    JOURNEY_WEB_HOST=0.0.0.0 \
    JOURNEY_POLICY_FILE=/app/policies/default.yaml
EXPOSE 6066
ENTRYPOINT ["journey"]
CMD ["worker"]
