# Annexa as a background service: `annexa run` with /metrics on 9464.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY collector collector
COPY checks checks
COPY connectors connectors
COPY migrations migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ANNEXA_CONFIG=/etc/annexa/annexa.yaml
RUN useradd --system --uid 10001 --home-dir /var/lib/annexa --create-home annexa
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/annexa.example.yaml /etc/annexa/annexa.yaml
USER annexa
WORKDIR /var/lib/annexa
EXPOSE 9464 8443
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=60s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=4)" || exit 1
ENTRYPOINT ["annexa"]
CMD ["run"]
