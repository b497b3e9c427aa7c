# syntax=docker/dockerfile:1

# Parley image: one image for the API, the Temporal worker and the migration job;
# docker-compose.yml picks the command. Debian (glibc) rather than Alpine because the
# Temporal worker's native core-bridge and @swc/core ship glibc prebuilt binaries.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full dependencies, compile TypeScript to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: production dependencies + compiled output only ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The migrate command reads db/migrations relative to the working directory (/app).
COPY --from=build /app/db/migrations ./db/migrations
# The web chat widget and page (static files the API serves from api/public/webchat).
COPY --from=build /app/api/public ./api/public

# Files stay root-owned (read-only to the app); the processes run unprivileged.
USER node
# 3000: API (PORT). 9464: worker Prometheus metrics (METRICS_PORT).
EXPOSE 3000 9464
CMD ["node", "dist/api/main.js"]
