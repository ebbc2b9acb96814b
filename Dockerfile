# syntax=docker/dockerfile:1
# Multi-stage build: a static kguard binary on an empty base, run as non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kguard ./cmd/kguard

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/kguard /kguard
COPY policies /policies
USER 65532:65532
EXPOSE 9092
ENTRYPOINT ["/kguard"]
CMD ["serve", "--config", "/etc/kguard/kguard.yaml"]
