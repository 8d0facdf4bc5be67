# The relay on Node 24 (type stripping runs the TypeScript sources directly: no build step).
FROM node:24-slim

ENV NODE_ENV=production \
    PORT=8000 \
    HOST=0.0.0.0 \
    BLOB_DIR=/data/blobs \
    USAGE_DB_PATH=/data/usage.sqlite

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY schemas ./schemas
COPY generated ./generated
COPY src ./src

# Run as the image's unprivileged user `node` (uid 1000); /data holds short-lived blobs and the SQLite
# usage ledger. A named volume inherits this ownership; a bind-mounted host directory must be writable by
# uid 1000 (`chown -R 1000:1000 <dir>`), or the relay refuses to start, naming the path and the user.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# SIGTERM drains in-flight requests (SHUTDOWN_GRACE_MS, 30 s) and writes the usage ledger before exiting:
# run with `docker run --stop-timeout 35` (docker stop waits only 10 s by default).
STOPSIGNAL SIGTERM
CMD ["node", "src/launch.js"]
