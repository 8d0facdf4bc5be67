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

# Run as the image's unprivileged user; /data holds short-lived blobs and the SQLite usage ledger.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# SIGTERM drains in-flight requests and flushes the usage ledger before exiting.
STOPSIGNAL SIGTERM
CMD ["node", "src/launch.js"]
