module github.com/sfsync/sfsync/services/sfsandbox

go 1.26.0

require github.com/sfsync/sfsync/pkg v0.0.0

require (
	github.com/lmittmann/tint v1.2.1 // indirect
	github.com/sethvargo/go-envconfig v1.4.3 // indirect
)

replace (
	github.com/sfsync/sfsync/pkg => ../../pkg
	github.com/sfsync/sfsync/proto => ../../proto
)
