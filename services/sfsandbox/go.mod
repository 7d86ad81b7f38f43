module github.com/sfsync/sfsync/services/sfsandbox

go 1.26.0

replace (
	github.com/sfsync/sfsync/pkg => ../../pkg
	github.com/sfsync/sfsync/proto => ../../proto
)
