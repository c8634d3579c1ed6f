// Package deploy holds the origin's deployment files, not code: a systemd
// unit (systemd/) and Kubernetes manifests (kubernetes/). Its tests check
// them: the unit with systemd-analyze and the manifests by strict decoding
// into the Kubernetes API types, and both by starting the real origin with
// the environment they give it. It is a module of its own so that the main
// module does not depend on the Kubernetes API packages.
package deploy
