// Package input holds the parsers of untrusted input that the command line
// (internal/cli) and a node's HTTP API use: the bodies of POST /v1/publish
// and POST /v1/revoke, the query and Accept header of GET /v1/watch, the
// captured frame `warp decode` reads (raw, hex, base64 or quoted as
// redis-cli prints it) and the frame bodies it prints, and the scenario
// files of `warp sim --config`.
//
// It sits below internal/cli and above sim, mesh, wire and syncbus, and is
// kept free of broker dependencies (clients, servers and test fakes alike)
// so that its fuzz targets build and fuzz cheaply: internal/cli's test
// binary links every broker server, and its instrumented build takes
// minutes on a cold cache.
//
// Every parser here takes bytes or a request from anyone: it never panics,
// bounds what it accepts, and refuses the rest with an error that says
// what is wrong and where (the field of a request, the line of a file).
// The package holds no state and is safe for concurrent use.
package input
