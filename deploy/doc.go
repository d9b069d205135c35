// Package deploy holds what a team needs to run slogate and call it from
// pipelines: the container image (Dockerfile), Kubernetes manifests
// (kubernetes/, kustomize-ready), an Argo Rollouts AnalysisTemplate and a
// Flagger Canary that ask slogate's gate, and CI examples (ci/). It has no
// Go code: its test checks that the manifests parse and agree with each
// other and with slogate's SLO loader. See README.md.
package deploy
