// Package deploy holds the deployment files of airlock itself: the
// Kubernetes manifests under kubernetes/ and, at the repository root, the
// Dockerfile. It has no Go code; its tests check the manifests and the
// Dockerfile without a cluster or an image build (docs/deploy.md).
package deploy
