module github.com/libpoolproxy/libpoolproxy/bindings/go

go 1.19
