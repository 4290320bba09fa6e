# virtgate: one image, two roles (ROLE=api | worker | all).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY modules ./modules
COPY jobs ./jobs
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Files the docs routes read at run time, at the paths they have in the checkout
# (src/openapi/docs.ts resolves them from dist/src/openapi/): the committed GraphQL
# schema and AsyncAPI document, and the sign-in page of /docs.
COPY openapi ./openapi
COPY src/openapi/docs-ui ./src/openapi/docs-ui
EXPOSE 8080
# Not root: the image's node user (uid 1000). Reaching the host's libvirtd needs write
# access to its socket, /var/run/libvirt/libvirt-sock (mode 0770 owned by libvirtd's
# unix_sock_group): give the container that group (docker-compose.yml: LIBVIRT_SOCKET_GID),
# or run it as root (--user 0) where libvirtd checks more than the socket's permissions.
USER node
CMD ["node", "dist/src/main.js"]
