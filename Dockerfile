# returnsd's container image (README, "Container"):
#
#   docker build -t returnsd .
#
# The build stage compiles a static binary; the final image is FROM scratch and
# holds the binary, CA certificates, a passwd naming UID 65532 and the folders
# returnsd writes: nothing to run but returnsd. scripts/image-check (make
# image-check) builds the final stage with podman, standing in for this stage.
# It needs BuildKit (RUN --mount), docker build's builder since Docker 23.

# The tag is go.mod's go line (scripts/image-check compares them). The binary is
# cross-compiled on the builder's platform, so a multi-platform build needs no
# emulation.
FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
# A go.mod asking for a newer Go fails the build instead of downloading one.
ENV GOTOOLCHAIN=local
WORKDIR /src
# Modules in a layer of their own: downloaded again only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH bash deploy/build-rootfs /out

FROM scratch
# Everything but returnsd's own folders belongs to root: the process cannot
# change its binary or its certificates.
COPY --from=build --chown=0:0 /out/rootfs/ /
# The folders returnsd writes: its spool (spool_dir; the default config's spool
# is under /tmp) and the drop folder of localdir sources. A named volume on the
# drop folder starts out owned by 65532, as here.
COPY --from=build --chown=65532:65532 /out/empty/ /var/spool/returnsd/
COPY --from=build --chown=65532:65532 /out/empty/ /srv/returnsd/drop/
VOLUME ["/srv/returnsd/drop"]
USER 65532:65532
# http.listen: the embedded example config listens on 127.0.0.1:8080, inside
# the container only; a mounted config with listen: ":8080" publishes it.
EXPOSE 8080
# Needs no curl: the binary GETs /healthz on the config's http.listen itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/returnsd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/returnsd"]
CMD ["run"]
