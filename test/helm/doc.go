// Package helm renders the Helm chart deploy/helm/slogate with Helm's own
// Go packages and decodes every object strictly into its Kubernetes type.
// It is a module of its own so that slogate's build never pulls Helm or
// the Kubernetes client libraries; `make test` runs it.
package helm
