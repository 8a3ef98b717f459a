# The ext_proc server as a static binary on a minimal base image.
# Inside a container, set server.grpc_address / admin_address to 0.0.0.0:...
# in the mounted config (the defaults listen on loopback only).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/extproc ./cmd/extproc

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/extproc /extproc
EXPOSE 50051 9080
ENTRYPOINT ["/extproc"]
CMD ["-config", "/etc/tollgate/tollgate.yaml"]
