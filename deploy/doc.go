// Package deploy holds what a team needs to run slogate and call it from
// pipelines: the container image (Dockerfile), Kubernetes manifests
// (kubernetes/, kustomize-ready), an Argo Rollouts AnalysisTemplate and a
// Flagger Canary that ask slogate's gate, a Helm chart (helm/), Argo CD
// notifications (argocd/) and CI examples (ci/). It has no Go code: its
// tests check that the manifests parse and agree with each other and with
// slogate's SLO loader, and that the Argo CD templates and the
// Jenkinsfile's commands work against slogate's API. See README.md.
package deploy
