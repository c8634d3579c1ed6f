package main

import (
	"net/http"

	"github.com/edgepoll/edgepoll/edge"
)

// newHandler returns the edge handler the guest serves: package edge's, the
// same code the Worker and native tests run.
func newHandler(cfg edge.Config, host edge.Host) http.Handler { return edge.New(cfg, host) }
