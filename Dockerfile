# Production image for Front Door. Build: docker build -t frontdoor .
# Migrations are a separate step:  docker run --rm -e DATABASE_URL=... frontdoor frontdoor migrate
# Serve:                            docker run -p 8000:8000 -e DATABASE_URL=... -e FRONTDOOR_ENVIRONMENT=production \
#                                     -e FRONTDOOR_JWT_SECRET=... frontdoor
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FRONTDOOR_ENVIRONMENT=production \
    FRONTDOOR_MIGRATIONS_DIR=/srv/frontdoor/migrations
RUN groupadd --system frontdoor && useradd --system --gid frontdoor --home-dir /srv/frontdoor frontdoor
WORKDIR /srv/frontdoor
COPY --from=build /opt/venv /opt/venv
COPY migrations ./migrations
USER frontdoor
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["frontdoor", "serve", "--host", "0.0.0.0", "--port", "8000"]
