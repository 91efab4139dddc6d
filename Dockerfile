# burnbox: one process serving SMTP and HTTP. Slim, non-root, with a health check.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/burnbox --create-home burnbox
COPY --from=build /install /usr/local
USER 10001:10001
WORKDIR /var/lib/burnbox
ENV BURNBOX_SMTP_LISTEN=0.0.0.0:2525 \
    BURNBOX_HTTP_LISTEN=0.0.0.0:8025 \
    PYTHONUNBUFFERED=1
EXPOSE 2525 8025
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8025/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["burnbox"]
CMD ["serve"]
